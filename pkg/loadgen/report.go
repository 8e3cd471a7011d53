package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// StatusError is the status_counts key of attempts that got no HTTP response
// (connection refused, timeout, ...).
const StatusError = "error"

// Report summarises a run. JSON field names are a stable contract used by the
// integration tests and the demo.
type Report struct {
	// Protocol is the Remote Write version used ("1.0" or "2.0").
	Protocol Protocol `json:"protocol"`
	// DurationSeconds is the wall-clock duration of the run.
	DurationSeconds float64 `json:"duration_seconds"`
	// Rounds is the number of rounds started.
	Rounds int64 `json:"rounds"`
	// Requests is the number of distinct requests sent (retries not included).
	Requests int64 `json:"requests"`
	// RequestsOK counts requests that eventually got a 2xx response.
	RequestsOK int64 `json:"requests_ok"`
	// RequestsFailed counts requests that were given up (non-retryable status,
	// retries exhausted or disabled, run stopped).
	RequestsFailed int64 `json:"requests_failed"`
	// Retries counts repeated attempts.
	Retries int64 `json:"retries"`
	// SentSamples counts samples (floats and histograms) in distinct requests sent.
	SentSamples int64 `json:"sent_samples"`
	// AcceptedSamples counts samples in requests that got a 2xx response.
	AcceptedSamples int64 `json:"accepted_samples"`
	// WrittenSamples sums the X-Prometheus-Remote-Write-Samples-Written response header (RW 2.0).
	WrittenSamples int64 `json:"written_samples"`
	// WrittenHistograms sums the X-Prometheus-Remote-Write-Histograms-Written header (RW 2.0).
	WrittenHistograms int64 `json:"written_histograms"`
	// WrittenExemplars sums the X-Prometheus-Remote-Write-Exemplars-Written header (RW 2.0).
	WrittenExemplars int64 `json:"written_exemplars"`
	// SamplesPerSecond is AcceptedSamples divided by the run duration.
	SamplesPerSecond float64 `json:"samples_per_second"`
	// StatusCounts counts attempts by HTTP status code ("200", "429", ...) or StatusError.
	StatusCounts map[string]int64 `json:"status_counts"`
	// LatencyMS summarises the latency of the attempts started after the
	// warmup (Config.Warmup), or of every attempt without one.
	LatencyMS LatencySummary `json:"latency_ms"`
	// WarmupLatencyMS summarises the attempts started during the warmup;
	// absent without one.
	WarmupLatencyMS *LatencySummary `json:"warmup_latency_ms,omitempty"`
}

// Write renders the report in format (OutputText or OutputJSON).
func (r Report) Write(w io.Writer, format string) error {
	if format == OutputJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write json report: %w", err)
		}
		return nil
	}
	codes := slices.Sorted(maps.Keys(r.StatusCounts))
	status := ""
	for _, c := range codes {
		status += fmt.Sprintf(" %s=%d", c, r.StatusCounts[c])
	}
	_, err := fmt.Fprintf(w, `protocol:          %s
duration:          %.2fs
rounds:            %d
requests:          %d (ok %d, failed %d, retries %d)
status counts:    %s
sent samples:      %d
accepted samples:  %d (%.1f/s)
written samples:   %d (histograms %d, exemplars %d)
latency ms:        p50 %.3f  p90 %.3f  p99 %.3f  max %.3f
`, r.Protocol, r.DurationSeconds, r.Rounds, r.Requests, r.RequestsOK, r.RequestsFailed, r.Retries,
		status, r.SentSamples, r.AcceptedSamples, r.SamplesPerSecond,
		r.WrittenSamples, r.WrittenHistograms, r.WrittenExemplars,
		r.LatencyMS.P50, r.LatencyMS.P90, r.LatencyMS.P99, r.LatencyMS.Max)
	if err == nil && r.WarmupLatencyMS != nil {
		l := r.WarmupLatencyMS
		_, err = fmt.Fprintf(w, "warmup latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", l.P50, l.P90, l.P99, l.Max)
	}
	if err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// maxStatus bounds the status code array; codes outside [0,maxStatus) are
// counted under StatusError.
const maxStatus = 600

// stats accumulates run counters; all methods are safe for concurrent use.
type stats struct {
	start                                 time.Time
	rounds, requests, ok, failed, retries atomic.Int64
	sent, accepted                        atomic.Int64
	writtenS, writtenH, writtenE          atomic.Int64
	status                                [maxStatus]atomic.Int64
	transportErrors                       atomic.Int64
	latency                               latencyHistogram
	// warmupEnd is when the warmup ends (zero: no warmup); attempts
	// started before it are recorded in warmup.
	warmupEnd time.Time
	warmup    latencyHistogram
}

// attempt records one HTTP attempt started at began; code 0 means no
// response.
func (s *stats) attempt(code int, began time.Time, d time.Duration) {
	if began.Before(s.warmupEnd) {
		s.warmup.record(d)
	} else {
		s.latency.record(d)
	}
	if code <= 0 || code >= maxStatus {
		s.transportErrors.Add(1)
		return
	}
	s.status[code].Add(1)
}

// report snapshots the counters.
func (s *stats) report(p Protocol, now time.Time) Report {
	elapsed := now.Sub(s.start).Seconds()
	r := Report{
		Protocol:          p,
		DurationSeconds:   elapsed,
		Rounds:            s.rounds.Load(),
		Requests:          s.requests.Load(),
		RequestsOK:        s.ok.Load(),
		RequestsFailed:    s.failed.Load(),
		Retries:           s.retries.Load(),
		SentSamples:       s.sent.Load(),
		AcceptedSamples:   s.accepted.Load(),
		WrittenSamples:    s.writtenS.Load(),
		WrittenHistograms: s.writtenH.Load(),
		WrittenExemplars:  s.writtenE.Load(),
		StatusCounts:      map[string]int64{},
		LatencyMS:         s.latency.summary(),
	}
	if !s.warmupEnd.IsZero() {
		w := s.warmup.summary()
		r.WarmupLatencyMS = &w
	}
	if elapsed > 0 {
		r.SamplesPerSecond = float64(r.AcceptedSamples) / elapsed
	}
	for code := range s.status {
		if n := s.status[code].Load(); n > 0 {
			r.StatusCounts[strconv.Itoa(code)] = n
		}
	}
	if n := s.transportErrors.Load(); n > 0 {
		r.StatusCounts[StatusError] = n
	}
	return r
}
