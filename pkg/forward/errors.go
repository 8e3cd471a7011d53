package forward

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
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

// Counts are the three kinds of elements a Remote Write request carries, as
// the X-Prometheus-Remote-Write-*-Written headers count them.
type Counts struct {
	Samples    int
	Histograms int
	Exemplars  int
}

// Total is the sum of the three counts.
func (c Counts) Total() int { return c.Samples + c.Histograms + c.Exemplars }

// countsOf counts the elements of req.
func countsOf(req *writev2.Request) Counts {
	var c Counts
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		c.Samples += len(ts.Samples)
		c.Histograms += len(ts.Histograms)
		c.Exemplars += len(ts.Exemplars)
	}
	return c
}

// PartialWriteError is an answer by which the backend wrote part of a
// request and refused the rest for good, as its
// X-Prometheus-Remote-Write-*-Written headers say: Written elements are
// stored, Sent minus Written are not. It is never retried. Status is the
// HTTP status (usually 400; a 2xx from a receiver that reports unwritten
// elements against the spec's rule); Err is the *HTTPError of a non-2xx
// answer and nil for a 2xx.
type PartialWriteError struct {
	Status  int
	Sent    Counts
	Written Counts
	Err     error
}

// Error implements error.
func (e *PartialWriteError) Error() string {
	msg := fmt.Sprintf("backend wrote %d of %d samples, %d of %d histograms, %d of %d exemplars",
		e.Written.Samples, e.Sent.Samples, e.Written.Histograms, e.Sent.Histograms, e.Written.Exemplars, e.Sent.Exemplars)
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s (answered %d)", msg, e.Status)
}

// Unwrap returns the underlying *HTTPError (nil for a 2xx answer).
func (e *PartialWriteError) Unwrap() error { return e.Err }

// Dropped is how many elements the backend refused.
func (e *PartialWriteError) Dropped() int { return e.Sent.Total() - e.Written.Total() }

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
	var pe *PartialWriteError
	switch {
	case errors.As(err, &pe) && pe.Err == nil:
		return "partial_write"
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
