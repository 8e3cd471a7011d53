package forward

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrBackpressure is wrapped by the error Append returns when accepting the
// batch would exceed Config.MaxPendingSamples. The caller should push back
// on its own client (e.g. answer 429/503) and try again later.
var ErrBackpressure = errors.New("forward queue full")

// ErrClosed is wrapped by the error Append returns once Run has begun
// shutting down.
var ErrClosed = errors.New("forwarder closed")

// ErrInvalidBatch is wrapped by errors about malformed batches (for example
// a label reference outside the symbol table). Such batches are never retried.
var ErrInvalidBatch = errors.New("invalid batch")

// maxErrorBody is how much of a backend's error answer is kept.
const maxErrorBody = 512

// RecoverableError marks a failure worth retrying: a network error, a
// timeout, HTTP 5xx or HTTP 429. RetryAfter is the backend's Retry-After
// hint (0 when absent).
type RecoverableError struct {
	// Err is the underlying failure.
	Err error
	// RetryAfter is the backend's requested minimum delay, 0 if none.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RecoverableError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("recoverable: %v (retry after %s)", e.Err, e.RetryAfter)
	}
	return "recoverable: " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RecoverableError) Unwrap() error { return e.Err }

// HTTPError is a non-recoverable answer from the backend (a 4xx other than
// 429, or an unexpected status). Body holds at most 512 bytes of the answer.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the backend's answer (at most 512 bytes).
	Body string
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("backend answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

// IsRecoverable reports whether err (or an error it wraps) is a
// *RecoverableError, i.e. whether sending the same batch again may succeed.
func IsRecoverable(err error) bool {
	var re *RecoverableError
	return errors.As(err, &re)
}

// retryAfter returns the RetryAfter hint carried by err, or 0.
func retryAfter(err error) time.Duration {
	var re *RecoverableError
	if errors.As(err, &re) {
		return re.RetryAfter
	}
	return 0
}

// dropReason is the bounded "reason" label value for a non-recoverable error.
func dropReason(err error) string {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return "http_" + strconv.Itoa(he.Status)
	case errors.Is(err, ErrInvalidBatch):
		return "invalid"
	default:
		return "error"
	}
}

// parseRetryAfter decodes a Retry-After header: delay-seconds or an HTTP
// date, relative to now. Unparseable or past values give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
