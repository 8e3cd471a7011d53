package distributor

import (
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/rules"
)

// govBatch is a governor's buffers for resolving missed series in batches
// (rules.Engine.ApplyBatchRecorded): one label buffer per batch slot, since
// the series of a batch are alive together, unlike applyRecorded's one
// reused buffer. Kept with the pooled governor, so a warm batch allocates
// nothing per series beyond what the rules do.
type govBatch struct {
	sbs    []labels.ScratchBuilder
	series []rules.Series
	fxs    []rules.Effects
	res    []rules.Result
}

// size makes room for n series.
func (b *govBatch) size(n int) {
	for len(b.sbs) < n {
		b.sbs = append(b.sbs, labels.NewScratchBuilder(16))
	}
	if cap(b.series) < n {
		b.series = make([]rules.Series, n, rules.MaxBatch)
		b.fxs = make([]rules.Effects, n, rules.MaxBatch)
		b.res = make([]rules.Result, n, rules.MaxBatch)
	}
	b.series, b.fxs, b.res = b.series[:n], b.fxs[:n], b.res[:n]
}

// release drops the batch's references to the request's labels.
func (b *govBatch) release() {
	clear(b.series)
	clear(b.res)
}

// applyBatch runs eng on the series req.Timeseries[j], j in chunk (at
// most rules.MaxBatch), rule by rule, recording each one's rule counters.
// The results and effects are in chunk's order and valid until the next
// call (Kept labels alias g's per-slot buffers; Changed labels are fresh).
func (g *governor) applyBatch(eng *rules.Engine, types *rules.TypeCache, withMeta bool, tenant string,
	req *writev2.Request, chunk []int) ([]rules.Result, []rules.Effects) {
	b := &g.batch
	b.size(len(chunk))
	for k, j := range chunk {
		ts := &req.Timeseries[j]
		s := &b.series[k]
		remotewrite.SeriesLabels(&b.sbs[k], req, ts, &s.Labels)
		s.Tenant, s.Meta = tenant, rules.Metadata{}
		if withMeta {
			s.Meta = g.metadata(types, tenant, remotewrite.MetricName(req, ts), req, ts)
		}
	}
	eng.ApplyBatchRecorded(b.series, b.fxs, b.res)
	return b.res, b.fxs
}

// resolveBatches is absorb's resolve for an engine with batch stages: the
// decoded series, in resolve order (order), go through the rules
// rules.MaxBatch at a time, rule by rule, so that a plugin is asked once
// per rule per batch rather than once per series; each series' entry is
// then written in the same order as resolve writes them. Outcomes,
// effects and counters are those of resolve (see rules.Engine.ApplyBatch).
func (in *intake) resolveBatches(dec *remotewrite.Decoded, order []int) {
	gov := in.gov
	defer gov.g.batch.release()
	req := &dec.Request
	prev := int32(-1)
	for len(order) > 0 {
		chunk := order[:min(len(order), rules.MaxBatch)]
		order = order[len(chunk):]
		res, fxs := gov.g.applyBatch(gov.eng, gov.types, gov.withMeta, in.tenant, req, chunk)
		for k, j := range chunk {
			rec := in.startRec(dec, j, &prev)
			in.resolved(rec, req, &req.Timeseries[j], &res[k], &fxs[k])
		}
	}
}
