package ingester

import (
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/cardinality"
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
}

// governBatch observes every series of rw for tenant and removes, in place,
// those an enforced limit refuses. It must run before the batch is
// appended to the WAL, so refused series are never written. rw must have
// passed forward.ValidateRequest (symbol references in range). Shadow
// refusals change nothing here; the tracker counts them.
func governBatch(obs Observer, tenant string, rw *writev2.Request, now time.Time) governed {
	var (
		g   governed
		b   = labels.NewScratchBuilder(16)
		ls  labels.Labels
		s   = cardinality.Series{Tenant: tenant}
		out = rw.Timeseries[:0]
	)
	for i := range rw.Timeseries {
		ts := &rw.Timeseries[i]
		b.Reset()
		for j := 0; j+1 < len(ts.LabelsRefs); j += 2 {
			b.Add(rw.Symbols[ts.LabelsRefs[j]], rw.Symbols[ts.LabelsRefs[j+1]])
		}
		b.Sort()
		b.Overwrite(&ls)
		s.Labels = ls
		s.Metric = ls.Get(model.MetricNameLabel)
		s.Hash = ls.Hash()
		s.Samples = len(ts.Samples) + len(ts.Histograms)
		s.Bytes = ts.Size()
		d := obs.Observe(&s, now)
		if !d.Admit {
			if g.refused == 0 {
				g.message = d.Message
			}
			g.refused++
			continue
		}
		if len(out) != i {
			out = append(out, *ts)
		} else {
			out = out[:i+1]
		}
	}
	// Clear the tail so the removed series' slices can be collected.
	clear(rw.Timeseries[len(out):])
	rw.Timeseries = out
	return g
}
