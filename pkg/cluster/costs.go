package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/usage"
)

// Costs adapts the cluster-wide cardinality fan-out to usage.CostSource: every metric the ingesters track, its series and
// samples/s summed over tenants, and per label its distinct values and the
// series the metric would have without it (the largest over tenants: a
// label-drop merges series if it does so for any tenant). A failed fan-out
// answers no metrics, which classifies nothing and so drops nothing (fail
// safe). Safe for concurrent use.
type Costs struct {
	src     cardinality.Source
	timeout time.Duration
	logger  *slog.Logger
}

var _ usage.CostSource = (*Costs)(nil)

// NewCosts asks src (a FanOut) for every metric, each round bounded by
// timeout. logger may be nil.
func NewCosts(src cardinality.Source, timeout time.Duration, logger *slog.Logger) *Costs {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Costs{src: src, timeout: timeout, logger: logger}
}

// MetricCosts implements usage.CostSource.
func (c *Costs) MetricCosts() []usage.MetricCost {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.src.Metrics(ctx, cardinality.Query{Limit: -1, Labels: true})
	switch {
	case errors.Is(err, ErrNoActiveIngester):
		// The cluster is starting (or has lost every ingester, which
		// readiness and the write path report): nothing to cost yet.
		c.logger.Debug("usage: no ACTIVE ingester yet; no metric costs this round")
		return nil
	case err != nil:
		c.logger.Warn("usage: cardinality fan-out failed; no metric costs this round", "err", err)
		return nil
	}
	return metricCosts(rows)
}

// metricCosts folds per-tenant rows into one cost per metric name. A
// label's SeriesWithout is the metric's series less what dropping the label
// saves in each tenant (each tenant's series are distinct); it stays 0
// (unknown) when any tenant's row does not know it.
func metricCosts(rows []cardinality.MetricCardinality) []usage.MetricCost {
	type acc struct {
		cost    usage.MetricCost
		labels  map[string]*usage.LabelCost
		saved   map[string]uint64
		unknown map[string]bool
	}
	byName := map[string]*acc{}
	for _, r := range rows {
		a := byName[r.Name]
		if a == nil {
			a = &acc{cost: usage.MetricCost{Name: r.Name}, labels: map[string]*usage.LabelCost{},
				saved: map[string]uint64{}, unknown: map[string]bool{}}
			byName[r.Name] = a
		}
		a.cost.Series += r.Series
		a.cost.SamplesRate += r.SamplesRate
		a.cost.RefusedSeries += r.RefusedSeries
		if r.Limit > 0 {
			a.cost.LimitUse = max(a.cost.LimitUse, float64(r.Series+r.RefusedSeries)/float64(r.Limit))
		}
		for _, l := range r.Labels {
			lc := a.labels[l.Name]
			if lc == nil {
				lc = &usage.LabelCost{Name: l.Name}
				a.labels[l.Name] = lc
			}
			lc.Values = max(lc.Values, l.Values)
			if l.SeriesWithout == 0 {
				a.unknown[l.Name] = true
				continue
			}
			a.saved[l.Name] += r.Series - min(l.SeriesWithout, r.Series)
		}
	}
	out := make([]usage.MetricCost, 0, len(byName))
	for _, a := range byName {
		for name, lc := range a.labels {
			if !a.unknown[name] {
				lc.SeriesWithout = max(1, a.cost.Series-min(a.saved[name], a.cost.Series))
			}
			a.cost.Labels = append(a.cost.Labels, *lc)
		}
		sort.Slice(a.cost.Labels, func(i, j int) bool { return a.cost.Labels[i].Name < a.cost.Labels[j].Name })
		out = append(out, a.cost)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AccessSource adapts the query statistics fan-out to usage.AccessSource:
// what every ingester holds for the metrics it owns, plus what this
// distributor recorded and has not shipped yet. An ingester that does not
// answer makes the answer incomplete, and the error blocks dropping. Safe
// for concurrent use.
type AccessSource struct {
	fanOut *FanOut
	outbox *usage.AccessStats
}

var _ usage.AccessSource = (*AccessSource)(nil)

// NewAccessSource reads f's statistics and outbox's.
func NewAccessSource(f *FanOut, outbox *usage.AccessStats) *AccessSource {
	return &AccessSource{fanOut: f, outbox: outbox}
}

// AccessSnapshot implements usage.AccessSource.
func (c *AccessSource) AccessSnapshot(ctx context.Context) (usage.AccessSnapshot, error) {
	snap, err := c.fanOut.Access(ctx)
	return usage.MergeSnapshots(snap, c.outbox.Snapshot()), err
}
