package forward

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promgov/promgov/pkg/record"
)

// validateRelabel checks a backend's write_relabel_configs as Prometheus
// does (UTF-8 label names), naming the entry: path is e.g.
// "backends[1].write_relabel_configs".
func validateRelabel(path string, cfgs []*relabel.Config) error {
	for i, c := range cfgs {
		if c == nil {
			return fmt.Errorf("%s[%d]: empty entry; remove it", path, i)
		}
		if c.Regex.Regexp == nil { // built in code rather than decoded
			c.Regex = relabel.MustNewRegexp("")
		}
		if err := c.Validate(model.UTF8Validation); err != nil {
			return fmt.Errorf("%s[%d]: %w; see https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config", path, i, err)
		}
	}
	return nil
}

// relabeler applies one backend's write_relabel_configs to every series of
// a WAL record before the record reaches that backend's shards, like
// Prometheus's remote_write write_relabel_configs: a series the configs
// drop (or leave without __name__) is not sent to this backend; other
// backends read the WAL on their own and are not affected. A series the
// configs leave unchanged is copied as it is; a changed one gets its new
// labels (and hash) while its data is copied byte for byte
// (record.AppendRelabeled). Family metadata whose every series in the
// record was dropped is dropped with them.
//
// Backends without write_relabel_configs have no relabeler and keep the
// zero-decode path. A relabeler is used by its WALForwarder's single
// reader goroutine only.
type relabeler struct {
	cfgs []*relabel.Config
	sb   labels.ScratchBuilder
	ls   labels.Labels // the current series' labels, overwritten per series
	lb   *labels.Builder
	// out is the rewritten batch, reused from record to record: the
	// Forwarder copies entries out of a batch while it places them.
	out []byte

	droppedSeries  prometheus.Counter
	droppedSamples prometheus.Counter
}

// newRelabeler returns nil when cfgs is empty. reg may be nil.
func newRelabeler(cfgs []*relabel.Config, reg prometheus.Registerer) *relabeler {
	if len(cfgs) == 0 {
		return nil
	}
	f := promauto.With(reg)
	return &relabeler{
		cfgs: cfgs,
		sb:   labels.NewScratchBuilder(16),
		lb:   labels.NewBuilder(labels.EmptyLabels()),
		droppedSeries: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_relabel_dropped_series_total",
			Help: "Series (one per series per WAL record) the backend's write_relabel_configs dropped; they are not sent to this backend only.",
		}),
		droppedSamples: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_relabel_dropped_samples_total",
			Help: "Samples, histograms and exemplars of the series the backend's write_relabel_configs dropped.",
		}),
	}
}

// apply relabels r in place (r.batch then aliases the relabeler's buffer
// until the next call). It reports whether anything is left to send.
func (rl *relabeler) apply(r *walRecord) bool {
	out := rl.out[:0]
	var (
		dropped, droppedCount int
		// names of dropped series, when the record carries family
		// metadata.
		gone map[string]bool
	)
	it := record.NewIter(r.batch)
	for it.Next() {
		e := it.Entry()
		// ls reuses its memory from series to series: nothing may keep
		// it (or a string from it) past this iteration.
		record.LabelsInto(e.Series, &rl.sb, &rl.ls)
		ls := rl.ls
		rl.lb.Reset(ls)
		keep := relabel.ProcessBuilder(rl.lb, rl.cfgs...)
		var nls labels.Labels
		if keep {
			nls = rl.lb.Labels()
			keep = nls.Get(model.MetricNameLabel) != ""
		}
		if !keep {
			dropped++
			droppedCount += e.Count()
			if len(r.meta) > 0 {
				if gone == nil {
					gone = map[string]bool{}
				}
				if name := ls.Get(model.MetricNameLabel); !gone[name] {
					gone[strings.Clone(name)] = true
				}
			}
			continue
		}
		if labels.Equal(ls, nls) {
			out = append(out, e.Raw...)
			continue
		}
		out = record.AppendRelabeled(out, e, nls)
	}
	rl.out = out
	r.batch = out
	if dropped == 0 {
		return len(out) > 0 || len(r.meta) > 0
	}
	rl.droppedSeries.Add(float64(dropped))
	rl.droppedSamples.Add(float64(droppedCount))
	r.count -= droppedCount
	if len(gone) > 0 {
		r.meta = keepMetadata(r.meta, gone, out)
	}
	return len(out) > 0 || len(r.meta) > 0
}

// keepMetadata drops the family metadata whose series in the record were
// all dropped: a family with series named in gone and none among the
// entries of kept (the relabelled batch).
func keepMetadata(meta []prompb.MetricMetadata, gone map[string]bool, kept []byte) []prompb.MetricMetadata {
	idx := record.NewMetaIndex(meta)
	drop := make(map[string]bool, len(gone))
	for name := range gone {
		if m := idx.Lookup(name); m != nil {
			drop[m.MetricFamilyName] = true
		}
	}
	for it := record.NewIter(kept); len(drop) > 0 && it.Next(); {
		if m := idx.Lookup(string(record.MetricName(it.Entry().Series))); m != nil {
			delete(drop, m.MetricFamilyName)
		}
	}
	out := make([]prompb.MetricMetadata, 0, len(meta))
	for _, m := range meta {
		if !drop[m.MetricFamilyName] {
			out = append(out, m)
		}
	}
	return out
}
