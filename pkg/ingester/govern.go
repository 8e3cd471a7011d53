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

// entryLabels builds the labels of the series being observed, only when
// the tracker asks for them (cardinality.Series.LabelsFrom).
type entryLabels struct {
	series []byte
	sb     labels.ScratchBuilder
}

func (l *entryLabels) Labels() labels.Labels { return record.Labels(l.series, &l.sb) }

// governBatch observes every series of batch (entries of pkg/record, each
// validated, names[i] the metric name of entry i) for tenant and returns
// the batch without those an enforced limit refuses: batch itself when
// nothing was refused, else a new batch. It must run before the batch is
// appended to the WAL, so refused series are never written. Shadow
// refusals change nothing here; the tracker counts them.
func governBatch(obs Observer, tenant string, batch []byte, names []string, now time.Time, collectPerMetric bool) ([]byte, governed) {
	var (
		g    governed
		src  entryLabels
		s    = cardinality.Series{Tenant: tenant, LabelsFrom: &src}
		kept []byte // nil until the first refusal
		i    int
	)
	it := record.NewIter(batch)
	for ; it.Next(); i++ {
		e := it.Entry()
		src.series = e.Series
		s.Metric = names[i]
		s.Hash = e.Hash
		s.Samples = e.Samples + e.Histograms
		s.Bytes = len(e.Series)
		d := obs.Observe(&s, now)
		if !d.Admit {
			if g.refused == 0 {
				g.message = d.Message
				kept = append(make([]byte, 0, len(batch)), batch[:it.Offset()]...)
			}
			g.refused++
			if collectPerMetric && (d.Limit == cardinality.LimitSeriesPerMetric || d.Limit == cardinality.LimitValuesPerLabel) {
				g.perMetric = append(g.perMetric, e.Raw...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, e.Raw...)
		}
	}
	if g.refused == 0 {
		return batch, g
	}
	return kept, g
}
