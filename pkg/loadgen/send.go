package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Response headers of Remote Write 2.0 receivers.
const (
	// HeaderSamplesWritten reports the float samples a RW 2.0 receiver wrote.
	HeaderSamplesWritten = "X-Prometheus-Remote-Write-Samples-Written"
	// HeaderHistogramsWritten reports the histogram samples a RW 2.0 receiver wrote.
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	// HeaderExemplarsWritten reports the exemplars a RW 2.0 receiver wrote.
	HeaderExemplarsWritten = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// ErrRequestFailed is wrapped by errors of requests that were given up.
var ErrRequestFailed = errors.New("remote write request failed")

// HTTPStatusError describes a non-2xx response.
type HTTPStatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the beginning of the response body.
	Body string
}

// Error implements error.
func (e *HTTPStatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// Retryable reports whether the status is worth retrying (429 or 5xx).
func (e *HTTPStatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code/100 == 5
}

// doer sends one HTTP request. *http.Client implements it; implementations
// must be safe for concurrent use.
type doer interface {
	Do(req *http.Request) (*http.Response, error)
}

var _ doer = (*http.Client)(nil)

// sender posts encoded bodies with retries. It is safe for concurrent use.
type sender struct {
	client   doer
	cfg      Config
	protocol Protocol
	stats    *stats
	// sleep waits d or until ctx is done; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error
	// urls are cfg.URLs(); attempts take them in turn (next counts).
	urls []string
	next atomic.Uint64
}

// url returns the endpoint of the next attempt (round robin).
func (s *sender) url() string {
	return s.urls[(s.next.Add(1)-1)%uint64(len(s.urls))]
}

// send posts body (carrying samples samples) until it succeeds, fails
// permanently or stop is done. Attempts run under ctx so in-flight requests
// finish after stop is done.
func (s *sender) send(ctx, stop context.Context, body []byte, samples int) error {
	s.stats.requests.Add(1)
	s.stats.sent.Add(int64(samples))
	backoff := s.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		err := s.attempt(ctx, body)
		if err == nil {
			s.stats.ok.Add(1)
			s.stats.accepted.Add(int64(samples))
			return nil
		}
		var se *HTTPStatusError
		retryable := !errors.As(err, &se) || se.Retryable()
		if !retryable || !s.cfg.Retry || (s.cfg.MaxRetries > 0 && attempt >= s.cfg.MaxRetries) ||
			ctx.Err() != nil || stop.Err() != nil {
			s.stats.failed.Add(1)
			return fmt.Errorf("%w after %d attempts: %w", ErrRequestFailed, attempt+1, err)
		}
		if err := s.sleep(stop, backoff); err != nil {
			s.stats.failed.Add(1)
			return fmt.Errorf("%w: run stopped while backing off: %w", ErrRequestFailed, err)
		}
		s.stats.retries.Add(1)
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// attempt performs one POST and records its outcome.
func (s *sender) attempt(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("User-Agent", "promgov-loadgen")
	if s.protocol == ProtocolV2 {
		req.Header.Set("Content-Type", ContentTypeV2)
		req.Header.Set("X-Prometheus-Remote-Write-Version", VersionV2)
	} else {
		req.Header.Set("Content-Type", ContentTypeV1)
		req.Header.Set("X-Prometheus-Remote-Write-Version", VersionV1)
	}
	if s.cfg.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", s.cfg.Tenant)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		s.stats.attempt(0, start, time.Since(start))
		return fmt.Errorf("post: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body) // drain so the connection is reused
	_ = resp.Body.Close()
	s.stats.attempt(resp.StatusCode, start, time.Since(start))
	if resp.StatusCode/100 != 2 {
		return &HTTPStatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
	}
	s.stats.writtenS.Add(parseWritten(resp.Header.Get(HeaderSamplesWritten)))
	s.stats.writtenH.Add(parseWritten(resp.Header.Get(HeaderHistogramsWritten)))
	s.stats.writtenE.Add(parseWritten(resp.Header.Get(HeaderExemplarsWritten)))
	return nil
}

// parseWritten decodes a *-Written response header; missing or malformed
// values count as 0.
func parseWritten(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
