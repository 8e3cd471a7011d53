package remotewrite

import (
	"errors"
	"fmt"
)

// Sentinel errors classifying decode failures; check them with errors.Is.
var (
	// ErrUnsupportedMediaType marks an unsupported Content-Type or
	// Content-Encoding; the handler answers 415.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrBadRequest marks a malformed request (bad snappy, bad protobuf, or a
	// request-level spec violation); the handler answers 400.
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge marks a request exceeding a configured size limit; every
	// *LimitError matches it. The handler answers 413.
	ErrTooLarge = errors.New("request too large")
)

// LimitError reports a request exceeding a size limit.
type LimitError struct {
	// What names the measured quantity: "compressed request body" or
	// "decoded request".
	What string
	// Flag is the full command-line flag that sets the limit, e.g.
	// "distributor.max-compressed-bytes".
	Flag string
	// Limit is the configured maximum, in Unit.
	Limit int64
	// Got is the observed size, in Unit; a lower bound when AtLeast is set.
	Got int64
	// Unit is what Limit and Got count; "" means bytes.
	Unit string
	// AtLeast is set when counting stopped once the limit was passed (a body
	// without a declared length, a request with too many series).
	AtLeast bool
}

// Error implements error.
func (e *LimitError) Error() string {
	bound, unit := "", e.Unit
	if e.AtLeast {
		bound = "at least "
	}
	if unit == "" {
		unit = "bytes"
	}
	return fmt.Sprintf("request too large: %s of %s%d %s exceeds the limit of %d %s; raise -%s to accept it",
		e.What, bound, e.Got, unit, e.Limit, unit, e.Flag)
}

// Is makes errors.Is(err, ErrTooLarge) true for every *LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// badRequest wraps ErrBadRequest with a formatted message.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
