package retro

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one stored float sample.
type Sample struct {
	T int64   // milliseconds since the epoch
	V float64 // value
}

// Histogram is one stored native histogram sample: exactly one of H
// (integer counts) and FH (float counts) is set.
type Histogram struct {
	T  int64 // milliseconds since the epoch
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// float returns h's histogram with float counts, compacted, for comparing
// what was written with what is read back (a backend may re-encode a
// histogram's spans).
func (h Histogram) float() *histogram.FloatHistogram {
	fh := h.FH
	if h.H != nil {
		fh = h.H.ToFloat(nil)
	} else {
		fh = fh.Copy()
	}
	return fh.Compact(0)
}

// Series is one stored series with its samples and native histogram
// samples in a time range, each in timestamp order.
type Series struct {
	Labels     labels.Labels
	Samples    []Sample
	Histograms []Histogram
}

// count is how many samples s carries, floats and histograms.
func (s *Series) count() int { return len(s.Samples) + len(s.Histograms) }

// Backend is the storage a job reads, writes and deletes. Implementations
// must be safe for concurrent use: a job calls them from several batches at
// once (Throttles.MaxConcurrency).
type Backend interface {
	// Kind names the backend type (prometheus, victoriametrics).
	Kind() string
	// ListSeries returns the label sets of the series selector matches that
	// may have samples in [start, end] (milliseconds, inclusive).
	ListSeries(ctx context.Context, selector string, start, end int64) ([]labels.Labels, error)
	// Read returns the samples in [start, end] of exactly the given series
	// (not series with more labels); series without samples are left out.
	Read(ctx context.Context, series []labels.Labels, start, end int64) ([]Series, error)
	// Write stores series (remote write).
	Write(ctx context.Context, series []Series) error
	// Delete removes the samples in [start, end] of exactly the given series.
	Delete(ctx context.Context, series []labels.Labels, start, end int64) error
	// CheckDelete reports why Delete cannot work (the admin API is off),
	// without deleting anything; nil when it can.
	CheckDelete(ctx context.Context) error
	// CheckWrite reports why samples as old as start cannot be written
	// (an out-of-order window too short), nil when they can.
	CheckWrite(ctx context.Context, start int64) error
}

// TombstoneCleaner is a Backend that keeps deleted samples on disk as
// tombstones until asked to clean them (Prometheus). Safe for concurrent use.
type TombstoneCleaner interface {
	// CleanTombstones removes deleted samples from disk.
	CleanTombstones(ctx context.Context) error
}

// ErrUnsupported is wrapped by errors of a step a backend cannot do.
var ErrUnsupported = errors.New("not supported by the backend")

// ErrAdminDisabled is wrapped by CheckDelete's answer when the backend's
// admin API is off.
var ErrAdminDisabled = errors.New("the backend's admin API is disabled")

// exactSelector renders a selector that matches exactly the series ls:
// an equality matcher per label, and `name=""` (absent) for every other
// label name in others, the label names the backend knows for the metric.
func exactSelector(ls labels.Labels, others []string) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	add := func(name, value string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(quoteName(name))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(value))
	}
	ls.Range(func(l labels.Label) { add(l.Name, l.Value) })
	for _, n := range others {
		if !ls.Has(n) {
			add(n, "")
		}
	}
	b.WriteByte('}')
	return b.String()
}

// quoteName quotes a label name that is not a legacy identifier (PromQL 3).
func quoteName(n string) string {
	for i, r := range n {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return strconv.Quote(n)
		}
	}
	return n
}

// metricNames returns the distinct metric names of series, sorted.
func metricNames(series []labels.Labels) []string {
	seen := map[string]bool{}
	for _, s := range series {
		seen[s.Get(model.MetricNameLabel)] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// keepExact returns the series of got whose labels are one of want's.
func keepExact(got []Series, want []labels.Labels) []Series {
	set := make(map[string]bool, len(want))
	for _, w := range want {
		set[w.String()] = true
	}
	out := got[:0]
	for _, s := range got {
		if set[s.Labels.String()] && s.count() > 0 {
			out = append(out, s)
		}
	}
	return out
}

// msToParam renders milliseconds as the seconds the HTTP APIs take.
func msToParam(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// httpStatusError is an answer of the backend's HTTP API that is not 2xx.
type httpStatusError struct {
	op     string
	status int
	body   string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s: backend answered %d: %s", e.op, e.status, e.body)
}
