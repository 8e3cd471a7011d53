package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/promgov/promgov/pkg/record"
)

// Isolating refused series.
//
// A backend that refuses one series of a request may refuse the whole
// request: a Remote Write 1.0 receiver has no way to say what it wrote
// (Prometheus fails a whole 1.0 request with 400 for one sample out of
// order, too old or too far in the future), and a 2.0 receiver may answer
// 4xx with Written headers of 0. Dropping the request would cost every
// other series in it, acknowledged long ago. So when the backend answers
// such a status and wrote nothing, the Forwarder splits the request in two
// halves and sends each (first half first, so every series stays in
// order), splitting again whatever is refused, until the refused series
// are alone and only they are dropped. A 2.0 answer with Written headers
// that say something was written is trusted instead: the rest is dropped
// without splitting (re-sending written data is what the specification
// rules out).
//
// Retries of the halves follow the usual rules (5xx, 429 and network
// errors through the backoff gate, until shutdown). The extra requests of
// one batch are bounded by Config.MaxSplitRequests, and so is the depth
// (at most log2 of the batch's series, and maxSplitDepth): a refused part
// left when the bound is reached is dropped whole and counted with reason
// "split_budget". What was refused is counted in
// promgov_forward_rejected_series_total{reason} and logged once per batch,
// grouped by metric name.

// maxSplitDepth bounds how often a refused part is halved.
const maxSplitDepth = 16

// splitStatus reports whether a refusal with status may be about some
// series only, so that splitting can save the rest: 400 (invalid or
// refused samples), 409 (conflict), 413 (too large: halves may pass), 422.
// Others (401, 403, 404, 405, 415, ...) are about the request as a whole.
func splitStatus(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// isolation is the state of isolating the refused series of one batch.
// It runs on the batch's shard goroutine.
type isolation struct {
	f      *Forwarder
	ctx    context.Context
	p      *pendingRequest
	starts []int    // entry i is p.batch[starts[i]:starts[i+1]]
	sums   []Counts // sums[i] is what entries [0, i) carry
	names  [][]byte // metric name of each entry
	// meta is the batch's family metadata until a part carrying it is
	// written: it goes with the next part sent.
	meta []prompb.MetricMetadata

	requests int // split requests sent (retries not counted)
	written  Counts
	// rejected counts refused series by metric and reason; refusedBy
	// counts their elements by reason.
	rejected  map[rejectKey]int
	refusedBy map[string]int
	series    map[string]int // refused series by reason
	example   string         // the backend's message for the first refusal
	stopped   bool           // the flush deadline passed
	unsent    int            // elements not sent because of it
}

// rejectKey groups refused series in the log.
type rejectKey struct{ metric, reason string }

// isolate takes over a batch the backend refused with he after the first
// attempt: it returns false, leaving p to the caller, when he's status is
// not one splitting can help with, splitting is off, or p carries no
// series. Otherwise it sends p's series in parts as described above, then
// counts, logs and settles p.
func (f *Forwarder) isolate(ctx context.Context, p *pendingRequest, he *HTTPError) bool {
	if f.cfg.MaxSplitRequests == 0 || !splitStatus(he.Status) || len(p.batch) == 0 {
		return false
	}
	iso := &isolation{f: f, ctx: ctx, p: p, meta: p.meta, rejected: map[rejectKey]int{}, refusedBy: map[string]int{}, series: map[string]int{}}
	var sum Counts
	it := record.NewIter(p.batch)
	for it.Next() {
		e := it.Entry()
		iso.starts = append(iso.starts, it.Offset())
		iso.sums = append(iso.sums, sum)
		iso.names = append(iso.names, record.MetricName(e.Series))
		sum.Samples += e.Samples
		sum.Histograms += e.Histograms
		sum.Exemplars += e.Exemplars
	}
	if it.Err() != nil {
		return false // the caller drops it as invalid
	}
	iso.starts = append(iso.starts, len(p.batch))
	iso.sums = append(iso.sums, sum)
	iso.refused(0, len(iso.names), he, 0)
	iso.finish()
	return true
}

// counts is what entries [lo, hi) carry.
func (iso *isolation) counts(lo, hi int) Counts {
	a, b := iso.sums[lo], iso.sums[hi]
	return Counts{Samples: b.Samples - a.Samples, Histograms: b.Histograms - a.Histograms, Exemplars: b.Exemplars - a.Exemplars}
}

// refused handles entries [lo, hi), which the backend refused whole with
// he: alone, or when no more splitting is allowed, they are dropped;
// otherwise each half is sent.
func (iso *isolation) refused(lo, hi int, he *HTTPError, depth int) {
	if iso.example == "" {
		iso.example = strings.TrimSpace(he.Body)
	}
	reason := dropReason(he)
	switch {
	case hi-lo == 1:
		iso.reject(lo, hi, reason)
		return
	case depth >= maxSplitDepth || iso.requests+2 > iso.f.cfg.MaxSplitRequests:
		iso.reject(lo, hi, "split_budget")
		return
	}
	mid := lo + (hi-lo)/2
	iso.requests += 2
	iso.send(lo, mid, depth+1)
	iso.send(mid, hi, depth+1)
}

// reject drops entries [lo, hi), counting them under reason.
func (iso *isolation) reject(lo, hi int, reason string) {
	for i := lo; i < hi; i++ {
		iso.rejected[rejectKey{string(iso.names[i]), reason}]++
	}
	iso.series[reason] += hi - lo
	iso.refusedBy[reason] += iso.counts(lo, hi).Total()
}

// send sends entries [lo, hi) (with the family metadata not yet written)
// until they are written, refused (then isolated further) or the flush
// deadline passes.
func (iso *isolation) send(lo, hi int, depth int) {
	c := iso.counts(lo, hi)
	if iso.stopped {
		iso.unsent += c.Total()
		return
	}
	f := iso.f
	part := &pendingRequest{
		tenant: iso.p.tenant, batch: iso.p.batch[iso.starts[lo]:iso.starts[hi]], meta: iso.meta,
		samples: c.Samples, histograms: c.Histograms, exemplars: c.Exemplars,
	}
	send := f.sendFunc(part)
	for {
		t, err := f.gate.pass(iso.ctx)
		if err != nil {
			iso.stopped = true
			iso.unsent += c.Total()
			return
		}
		start := time.Now()
		err = send(iso.ctx)
		f.m.splitRequests.Inc()
		var (
			pe *PartialWriteError
			he *HTTPError
		)
		switch {
		case err == nil:
			f.gate.done(t, outcomeWritten, 0)
			iso.written = iso.written.add(c)
			iso.meta = nil
			return
		case errors.As(err, &pe):
			// Written in part, as the Written headers say: trusted, the
			// rest dropped without knowing which series it was.
			o := outcomeWritten
			if pe.Err != nil {
				o = outcomeRefused
			}
			f.gate.done(t, o, 0)
			iso.written = iso.written.add(pe.Written)
			iso.meta = nil
			iso.refusedBy[dropReason(err)] += pe.Dropped()
			if iso.example == "" && errors.As(err, &he) {
				iso.example = strings.TrimSpace(he.Body)
			}
			return
		case IsRecoverable(err) && iso.ctx.Err() == nil:
			f.gate.done(t, outcomeFailed, retryAfter(err))
			f.m.retries.Inc()
			f.m.sendDuration.WithLabelValues("recoverable").Observe(time.Since(start).Seconds())
			continue
		case iso.ctx.Err() != nil:
			f.gate.done(t, outcomeNone, 0)
			iso.stopped = true
			iso.unsent += c.Total()
			return
		case errors.As(err, &he) && splitStatus(he.Status):
			f.gate.done(t, outcomeRefused, 0)
			iso.refused(lo, hi, he, depth)
			return
		default:
			o := outcomeNone
			if errors.As(err, &he) {
				o = outcomeRefused
				if iso.example == "" {
					iso.example = strings.TrimSpace(he.Body)
				}
			}
			f.gate.done(t, o, 0)
			iso.reject(lo, hi, dropReason(err))
			return
		}
	}
}

// finish counts and logs the outcome once and settles the batch, unless
// the flush deadline left part of it unsent: then, with a WAL, its records
// stay unsettled and are sent again after the next start.
func (iso *isolation) finish() {
	f, p := iso.f, iso.p
	f.m.sentSamples.Add(float64(iso.written.Samples))
	f.m.sentHistograms.Add(float64(iso.written.Histograms))
	f.m.sentExemplars.Add(float64(iso.written.Exemplars))
	f.m.sentMetadata.Add(float64(len(p.meta) - len(iso.meta)))
	for reason, n := range iso.refusedBy {
		f.m.dropped.WithLabelValues(reason).Add(float64(n))
	}
	for reason, n := range iso.series {
		f.m.rejectedSeries.WithLabelValues(reason).Add(float64(n))
	}
	f.release(p.count())
	if iso.unsent > 0 {
		f.shutdownDropped.Add(int64(iso.unsent))
		if !f.durable {
			f.m.dropped.WithLabelValues("shutdown").Add(float64(iso.unsent))
		}
	} else {
		f.settle(p)
	}
	refused := 0
	for _, n := range iso.refusedBy {
		refused += n
	}
	f.logger.Warn("backend refused part of a batch; sent the rest in parts and dropped only what it refused",
		"tenant", p.tenant, "series", len(iso.names), "written", iso.written.Total(), "dropped", refused,
		"rejected_series", iso.summary(10), "requests", iso.requests, "unsent_at_shutdown", iso.unsent, "metadata_not_written", len(iso.meta),
		"backend_said", iso.example)
}

// summary renders the refused series by metric and reason, the largest
// groups first, at most limit of them.
func (iso *isolation) summary(limit int) string {
	keys := make([]rejectKey, 0, len(iso.rejected))
	for k := range iso.rejected {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rejectKey) int {
		if d := iso.rejected[b] - iso.rejected[a]; d != 0 {
			return d
		}
		return strings.Compare(a.metric+a.reason, b.metric+b.reason)
	})
	var sb strings.Builder
	for i, k := range keys {
		if i == limit {
			fmt.Fprintf(&sb, " and %d more metrics", len(keys)-limit)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(k.metric + " (" + k.reason + ") x" + strconv.Itoa(iso.rejected[k]))
	}
	return sb.String()
}

// add returns c + o.
func (c Counts) add(o Counts) Counts {
	return Counts{Samples: c.Samples + o.Samples, Histograms: c.Histograms + o.Histograms, Exemplars: c.Exemplars + o.Exemplars}
}
