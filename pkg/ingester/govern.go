package ingester

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/record"
)

// Observer decides per series whether cardinality limits admit it.
// cardinality.Tracker implements it; Observe is safe for concurrent use and
// does not retain s.
type Observer interface {
	Observe(s *cardinality.Series, now time.Time) cardinality.Decision
}

var _ Observer = (*cardinality.Tracker)(nil)

// governed is the outcome of governing one batch.
type governed struct {
	// refused counts the series a limit refused; they were removed.
	refused int
	// message explains the first refusal (limit, metric, tenant).
	message string
	// perMetric holds the refused entries a per-metric limit refused, for
	// an on_limit: overflow policy (collectPerMetric only).
	perMetric []byte
}

// prefetcher is an Observer that can prepare several series before they
// are observed (cardinality.Tracker.Prefetch), so that the cache misses of
// their lookups overlap. Safe for concurrent use, like Observe.
type prefetcher interface {
	Prefetch(ss []cardinality.Series)
}

var _ prefetcher = (*cardinality.Tracker)(nil)

// prefetchAhead is how many series governBatch prepares at a time: enough
// that the first one's slot has arrived when it is observed, few enough
// that the last one's is still in the cache.
const prefetchAhead = 16

// entryLabels builds the labels of the series being observed, only when
// the tracker asks for them (cardinality.Series.LabelsFrom).
type entryLabels struct {
	series []byte
	sb     *labels.ScratchBuilder
}

func (l *entryLabels) Labels() labels.Labels { return record.Labels(l.series, l.sb) }

// governScratch is governBatch's working memory, kept in a pushScratch so
// that a push allocates none of it.
type governScratch struct {
	sb     labels.ScratchBuilder
	srcs   [prefetchAhead]entryLabels
	series [prefetchAhead]cardinality.Series
	raws   [prefetchAhead][]byte
	offs   [prefetchAhead]int // offset of each entry in the batch
}

func (gs *governScratch) clear() {
	clear(gs.srcs[:])
	clear(gs.series[:])
	clear(gs.raws[:])
}

// governBatch observes every series of batch (entries of pkg/record, each
// validated, sc.names[i] the metric name of entry i) for tenant and returns
// the batch without those an enforced limit refuses: batch itself when
// nothing was refused, else a new batch. It must run before the batch is
// appended to the WAL, so refused series are never written. Shadow
// refusals change nothing here; the tracker counts them.
//
// Series are observed in batch order, prefetchAhead at a time: the
// observer prepares them first when it can (prefetcher).
func governBatch(obs Observer, tenant string, batch []byte, sc *pushScratch, now time.Time, collectPerMetric bool) ([]byte, governed) {
	var (
		g     governed
		kept  []byte // nil until the first refusal
		i     int
		gs    = &sc.gov
		names = sc.names
		srcs  = &gs.srcs
		ss    = &gs.series
		raws  = &gs.raws
		offs  = &gs.offs
	)
	defer gs.clear() // no reference to the batch outlives the push
	pf, _ := obs.(prefetcher)
	it := record.NewIter(batch)
	for more := true; more; {
		n := 0
		for ; n < prefetchAhead; n++ {
			if more = it.Next(); !more {
				break
			}
			e := it.Entry()
			srcs[n] = entryLabels{series: e.Series, sb: &gs.sb}
			ss[n] = cardinality.Series{
				Tenant: tenant, Metric: names[i+n], Hash: e.Hash, LabelsFrom: &srcs[n],
				Samples: e.Samples + e.Histograms, Bytes: len(e.Series),
			}
			raws[n], offs[n] = e.Raw, it.Offset()
		}
		if n == 0 {
			break
		}
		if pf != nil {
			pf.Prefetch(ss[:n])
		}
		for j := range n {
			d := obs.Observe(&ss[j], now)
			if !d.Admit {
				if g.refused == 0 {
					g.message = d.Message
					kept = append(make([]byte, 0, len(batch)), batch[:offs[j]]...)
				}
				g.refused++
				if collectPerMetric && (d.Limit == cardinality.LimitSeriesPerMetric || d.Limit == cardinality.LimitValuesPerLabel) {
					g.perMetric = append(g.perMetric, raws[j]...)
				}
				continue
			}
			if kept != nil {
				kept = append(kept, raws[j]...)
			}
		}
		i += n
	}
	if g.refused == 0 {
		return batch, g
	}
	return kept, g
}
