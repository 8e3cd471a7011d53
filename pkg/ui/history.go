package ui

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/cardinality"
)

// History is the UI's in-memory time series: every interval it samples
// the top metrics (series and samples/s, from a cardinality.Source), the
// node's ingest rate (from its own metrics) and the refused/dropped rate
// by reason (this node's counters and, on a distributor, every ingester's
// from its NodeSource), keeping the last points of each. Memory is
// bounded: at most 2 x metrics tracks of points x 2 float64 each, one
// track of points per refusal reason (a bounded label set) and the last
// counter value per node and reason. Safe for concurrent use; Run samples
// until ctx ends.
type History struct {
	cfg    Config
	snap   *Snapshot
	g      prometheus.Gatherer
	logger *slog.Logger

	mu     sync.RWMutex
	times  []time.Time // circular, len cfg.HistoryPoints
	next   int         // index of the next point
	n      int         // points written, up to len(times)
	tracks map[trackKey]*track
	ingest []float64
	last   float64 // received samples total at the last tick
	lastAt time.Time
	// nodes, when set, adds the ingesters' refusals (distributor).
	nodes NodeSource
	// warm are run after each snapshot refresh by Run: work the pages
	// would otherwise do on the first view after a change.
	warm []func()
	// refused is the refused/dropped rate per reason; lastRefused the
	// counters per node and reason at the last tick.
	refused     map[string][]float64
	lastRefused map[string]map[string]float64
}

type trackKey struct{ tenant, name string }

type track struct {
	series, rate []float64
}

// Series is one metric's history, oldest point first; NaN where the metric
// was not among the top metrics.
type Series struct {
	Times  []time.Time
	Series []float64
	Rate   []float64
}

// NewHistory builds the sampler and the ranked snapshot it samples from
// (Snapshot), which it refreshes. src answers every metric (a Tracker on an
// ingester, the fan-out on a distributor); g is the node's registry.
func NewHistory(cfg Config, src cardinality.Source, g prometheus.Gatherer, logger *slog.Logger) *History {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &History{
		cfg: cfg, snap: NewSnapshot(src, cfg.SnapshotInterval, logger), g: g, logger: logger,
		times:   make([]time.Time, cfg.HistoryPoints),
		tracks:  map[trackKey]*track{},
		ingest:  make([]float64, cfg.HistoryPoints),
		refused: map[string][]float64{},
	}
}

// onRefresh adds f to what Run does after each snapshot refresh.
func (h *History) onRefresh(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.warm = append(h.warm, f)
}

// useNodes makes the history add every ingester's refusals (distributor).
func (h *History) useNodes(ns NodeSource) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes = ns
}

// Snapshot is the ranked snapshot the history samples from; the pages
// read it too.
func (h *History) Snapshot() *Snapshot { return h.snap }

// Run refreshes the snapshot every snapshot interval and samples every
// history interval until ctx is cancelled.
func (h *History) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.HistoryInterval)
	defer t.Stop()
	rt := time.NewTicker(h.cfg.SnapshotInterval)
	defer rt.Stop()
	h.refresh(ctx)
	h.Sample(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.C:
			h.refresh(ctx)
		case now := <-t.C:
			h.Sample(ctx, now)
		}
	}
}

func (h *History) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SnapshotInterval)
	defer cancel()
	if err := h.snap.Refresh(ctx); err != nil {
		h.logger.Debug("UI snapshot refresh failed", "err", err)
	}
	h.mu.RLock()
	warm := h.warm
	h.mu.RUnlock()
	for _, f := range warm {
		f()
	}
}

// Sample takes one point at now.
func (h *History) Sample(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HistoryInterval)
	defer cancel()
	rows, err := h.snap.Metrics(ctx, cardinality.Query{Limit: h.cfg.HistoryMetrics, Sort: cardinality.SortSeries})
	if err != nil {
		h.logger.Debug("UI history: top metrics unavailable", "err", err)
	}
	received := math.NaN()
	refused := map[string]map[string]float64{} // node -> reason -> total
	if st, err := ReadNodeStatus(h.g, "", ""); err == nil {
		received = st.ReceivedSamples
		refused["\x00self"] = st.Refused
	}
	h.mu.RLock()
	ns := h.nodes
	h.mu.RUnlock()
	if ns != nil {
		for _, n := range ns.Nodes(ctx) {
			if n.Error == "" && n.Node != "" {
				refused[n.Node] = n.Refused
			}
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	i := h.next
	h.times[i] = now
	h.next = (i + 1) % len(h.times)
	h.n = min(h.n+1, len(h.times))
	for _, tr := range h.tracks {
		tr.series[i], tr.rate[i] = math.NaN(), math.NaN()
	}
	h.ingest[i] = math.NaN()
	if !h.lastAt.IsZero() && !math.IsNaN(received) && received >= h.last {
		h.ingest[i] = (received - h.last) / now.Sub(h.lastAt).Seconds()
	}
	h.sampleRefused(i, refused, now)
	h.last, h.lastAt = received, now
	top := map[trackKey]bool{}
	for _, r := range rows {
		k := trackKey{r.Tenant, r.Name}
		top[k] = true
		tr := h.tracks[k]
		if tr == nil {
			tr = &track{series: nanSlice(len(h.times)), rate: nanSlice(len(h.times))}
			h.tracks[k] = tr
		}
		tr.series[i], tr.rate[i] = float64(r.Series), r.SamplesRate
	}
	// Bound: tracks that left the top are dropped first when over 2x.
	if len(h.tracks) > 2*h.cfg.HistoryMetrics {
		for k := range h.tracks {
			if !top[k] {
				delete(h.tracks, k)
			}
		}
	}
}

// sampleRefused writes point i of the refused rate per reason: the sum,
// over the nodes read now and at the last tick, of each counter's increase
// divided by the time between the ticks. A counter that went down (a
// restart) or a node missing from either tick adds nothing to the point.
// Called with h.mu, before h.lastAt moves to now.
func (h *History) sampleRefused(i int, now map[string]map[string]float64, at time.Time) {
	for _, tr := range h.refused {
		tr[i] = math.NaN()
	}
	if !h.lastAt.IsZero() && h.lastRefused != nil {
		dt := at.Sub(h.lastAt).Seconds()
		for node, reasons := range now {
			prev, ok := h.lastRefused[node]
			if !ok || dt <= 0 {
				continue
			}
			for reason, v := range reasons {
				p, ok := prev[reason]
				if !ok {
					p = 0 // a reason seen for the first time counted from 0
				}
				if v < p {
					continue
				}
				tr := h.refused[reason]
				if tr == nil {
					tr = nanSlice(len(h.times))
					h.refused[reason] = tr
				}
				tr[i] = addNaN(tr[i], (v-p)/dt)
			}
		}
	}
	h.lastRefused = now
}

// Refused returns the refused/dropped rate (per second) history by reason.
func (h *History) Refused() (times []time.Time, byReason map[string][]float64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	byReason = map[string][]float64{}
	for _, i := range h.order() {
		times = append(times, h.times[i])
		for reason, tr := range h.refused {
			byReason[reason] = append(byReason[reason], tr[i])
		}
	}
	return times, byReason
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// order returns the ring indexes oldest first.
func (h *History) order() []int {
	idx := make([]int, 0, h.n)
	start := (h.next - h.n + len(h.times)) % len(h.times)
	for j := range h.n {
		idx = append(idx, (start+j)%len(h.times))
	}
	return idx
}

// Metric returns the history of name in tenant, or summed over every
// tenant when tenant is "". ok is false when it was never sampled.
func (h *History) Metric(tenant, name string) (s Series, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var trs []*track
	for k, tr := range h.tracks {
		if k.name == name && (tenant == "" || k.tenant == tenant) {
			trs = append(trs, tr)
		}
	}
	if len(trs) == 0 {
		return Series{}, false
	}
	for _, i := range h.order() {
		s.Times = append(s.Times, h.times[i])
		ser, rate := math.NaN(), math.NaN()
		for _, tr := range trs {
			ser = addNaN(ser, tr.series[i])
			rate = addNaN(rate, tr.rate[i])
		}
		s.Series = append(s.Series, ser)
		s.Rate = append(s.Rate, rate)
	}
	return s, true
}

// Ingest returns the node's ingest rate (samples/s) history.
func (h *History) Ingest() Series {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var s Series
	for _, i := range h.order() {
		s.Times = append(s.Times, h.times[i])
		s.Rate = append(s.Rate, h.ingest[i])
	}
	return s
}

// Span is how long the history reaches back when full.
func (h *History) Span() time.Duration {
	return time.Duration(h.cfg.HistoryPoints) * h.cfg.HistoryInterval
}

func addNaN(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return a + b
}
