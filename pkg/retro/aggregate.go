package retro

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/record"
)

// Merges through aggregation rules. Several stored series that the rules
// turn into one cannot be rewritten (their samples share timestamps), but
// when an aggregation rule of the job's governance takes them, as the
// ingester would take them live, the job folds them into the rule's
// outputs with the ingester's own engine (pkg/aggregate), fed with the
// stored samples in time order: outputs at each interval's end minus 1ms,
// counters as running totals of increases across resets, gauges over each
// input's last value, inputs forgotten after 10 minutes without samples.
// Every stored series of the selector the aggregation rules take (after
// the rules) is folded, merged or not, as it would be live; an output
// group is never split between batches, so each batch computes whole
// outputs from the start of the range. The outputs are written and
// verified like copies; the originals are deleted only after that.

// ActionAggregate: the series is an input of an aggregation rule; its
// samples are folded into the rule's outputs, and the original deleted.
const ActionAggregate = "aggregate"

// compileAggregations parses the aggregation rules a job keeps (a YAML
// list) and builds an engine of them for planning (nil when there are
// none); each batch folds on an engine of its own, from cfg.
func compileAggregations(y string) (cfg aggregate.Config, eng *aggregate.Engine, err error) {
	if cfg, err = aggregationConfig(y); err != nil || len(cfg.Rules) == 0 {
		return cfg, nil, err
	}
	eng, err = aggregate.New(cfg, nil, nil)
	return cfg, eng, err
}

func aggregationConfig(y string) (aggregate.Config, error) {
	var cfg aggregate.Config
	if strings.TrimSpace(y) == "" {
		return cfg, nil
	}
	if err := yaml.Unmarshal([]byte(y), &cfg.Rules); err != nil {
		return cfg, fmt.Errorf("aggregations: %w", err)
	}
	return cfg, nil
}

// groupID is a short, stable name of an aggregation output group, for
// keeping a group's inputs in one batch (a collision only joins two groups
// in one batch).
func groupID(key string) string { return strconv.FormatUint(xxhash.Sum64String(key), 16) }

// batchRanges cuts items into batches of about size series, never
// splitting the inputs of an aggregation group (plan sorts them together).
// It depends only on items and size, so a resumed job finds the same
// batches its checkpoint counts.
func batchRanges(items []Item, size int) [][2]int {
	var out [][2]int
	for i := 0; i < len(items); {
		j := min(i+size, len(items))
		for j < len(items) && j > i && items[j].Action == ActionAggregate && items[j-1].Action == ActionAggregate && items[j].Group == items[j-1].Group {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// sortForBatches puts the aggregation inputs last, grouped, keeping the
// order of the others.
func sortForBatches(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		aa, ba := a.Action == ActionAggregate, b.Action == ActionAggregate
		switch {
		case aa != ba:
			if aa {
				return 1
			}
			return -1
		case !aa:
			return 0
		}
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return labels.Compare(a.Source, b.Source)
	})
}

// aggregateBatch folds the inputs part (all of them ActionAggregate, whole
// groups) into their outputs over the job's range, slice by slice, writing
// and verifying the outputs of each slice (to om instead, unverified, for
// an openmetrics job).
func (m *Manager) aggregateBatch(ctx context.Context, be Backend, spec *Spec, cfg aggregate.Config, part []Item, lim *limiter, om *omBatch, res *batchResult) error {
	if len(part) == 0 {
		return nil
	}
	eng, err := aggregate.New(cfg, nil, nil)
	if err != nil {
		return fmt.Errorf("aggregations: %w", err)
	}
	if eng == nil {
		return fmt.Errorf("aggregations: the job keeps none, but its plan aggregates %d series", len(part))
	}
	f := &folder{eng: eng, tenant: spec.Tenant, window: eng.Window().Milliseconds(), pending: map[string]*Series{}}
	if f.window <= 0 {
		return fmt.Errorf("aggregations: no interval to step by (%s)", eng.Window())
	}
	srcs := make([]labels.Labels, len(part))
	f.inputs = make(map[string]input, len(part))
	for i, it := range part {
		srcs[i] = it.Source
		f.inputs[it.Source.String()] = input{labels: record.AppendLabels(nil, it.Target), name: it.Target.Get(model.MetricNameLabel), hash: it.Source.Hash()}
	}
	for _, sl := range sliceRange(spec.startMs(), spec.endMs(), m.d.Config.Slice.Milliseconds()) {
		t := time.Now()
		got, err := be.Read(ctx, srcs, sl.start, sl.end)
		if err != nil {
			return err
		}
		res.readT += time.Since(t)
		var read int64
		for _, s := range got {
			if len(s.Histograms) > 0 {
				return fmt.Errorf("aggregate: %s has native histogram samples, which jobs do not aggregate; originals kept (narrow the selector)", s.Labels)
			}
			read += int64(len(s.Samples))
		}
		res.read += read
		if err := lim.samples(ctx, int(read)); err != nil {
			return err
		}
		if err := f.feed(got, sl); err != nil {
			return err
		}
		if err := m.writeOutputs(ctx, be, f.take(), om, res); err != nil {
			return err
		}
	}
	f.collect(eng.Close(time.UnixMilli(spec.endMs()+eng.Horizon().Milliseconds()+1), nil))
	return m.writeOutputs(ctx, be, f.take(), om, res)
}

// input is what an aggregation input is fed as: its labels after the
// rules (in the record's form) and metric name, and its own identity (the
// hash of its stored labels), so that inputs the rules merge stay
// separate inputs of the engine.
type input struct {
	labels []byte
	name   string
	hash   uint64
}

// folder drives an offline aggregation engine with a clock that follows
// the samples.
type folder struct {
	eng     *aggregate.Engine
	tenant  string
	window  int64 // ms
	inputs  map[string]input
	pending map[string]*Series // outputs not yet written, by labels

	batch  []byte
	names  []string
	series []byte // one entry's series, reused
	sb     labels.ScratchBuilder
}

// feed processes the samples of got (read in sl) a window at a time,
// closing the intervals each window's end completes.
func (f *folder) feed(got []Series, sl timeSlice) error {
	next := make([]int, len(got))
	w := sl.start - ((sl.start%f.window)+f.window)%f.window
	for ; w <= sl.end; w += f.window {
		f.batch, f.names = f.batch[:0], f.names[:0]
		for i, s := range got {
			j := next[i]
			k := j
			for k < len(s.Samples) && s.Samples[k].T < w+f.window {
				k++
			}
			if k == j {
				continue
			}
			next[i] = k
			in, ok := f.inputs[s.Labels.String()]
			if !ok {
				return fmt.Errorf("aggregate: the backend answered %s, which the batch did not ask for", s.Labels)
			}
			f.series = append(f.series[:0], in.labels...)
			for _, smp := range s.Samples[j:k] {
				f.series = aggregate.AppendSample(f.series, smp.T, smp.V)
			}
			f.batch = record.AppendHeader(f.batch, in.hash, 0, k-j, 0, 0, len(f.series))
			f.batch = append(f.batch, f.series...)
			f.names = append(f.names, in.name)
		}
		if len(f.names) > 0 {
			kept, taken := f.eng.Process(f.tenant, f.batch, f.names)
			if taken.Series != len(f.names) {
				// Never delete what was not folded: the plan said the
				// rules take these series, the engine did not.
				it := record.NewIter(kept)
				name := "?"
				if it.Next() {
					name = record.Labels(it.Entry().Series, &f.sb).String()
				}
				return fmt.Errorf("aggregate: %d of %d series were not taken by the aggregation rules (first: %s); originals kept", len(f.names)-taken.Series, len(f.names), name)
			}
		}
		f.collect(f.eng.Close(time.UnixMilli(w+f.window), nil))
	}
	return nil
}

// collect adds closed intervals' outputs to pending.
func (f *folder) collect(outs []aggregate.Output) {
	for _, o := range outs {
		it := record.NewIter(o.Batch)
		for it.Next() {
			var ts prompb.TimeSeries
			if err := ts.Unmarshal(it.Entry().Series); err != nil {
				continue // the engine's own encoding: cannot happen
			}
			ls := record.Labels(it.Entry().Series, &f.sb)
			k := ls.String()
			s := f.pending[k]
			if s == nil {
				s = &Series{Labels: ls}
				f.pending[k] = s
			}
			for _, smp := range ts.Samples {
				s.Samples = append(s.Samples, Sample{T: smp.Timestamp, V: smp.Value})
			}
		}
	}
}

// take returns the pending outputs, sorted, and forgets them.
func (f *folder) take() []Series {
	out := make([]Series, 0, len(f.pending))
	for _, s := range f.pending {
		if len(s.Samples) > 0 {
			out = append(out, *s)
		}
	}
	clear(f.pending)
	slices.SortFunc(out, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	return out
}

// writeOutputs writes outputs and verifies them (or writes them to om).
func (m *Manager) writeOutputs(ctx context.Context, be Backend, out []Series, om *omBatch, res *batchResult) error {
	if len(out) == 0 {
		return nil
	}
	var n int64
	sl := timeSlice{start: out[0].Samples[0].T, end: out[0].Samples[0].T}
	for _, s := range out {
		n += int64(len(s.Samples))
		sl.start = min(sl.start, s.Samples[0].T)
		sl.end = max(sl.end, s.Samples[len(s.Samples)-1].T)
	}
	t := time.Now()
	if om != nil {
		if err := om.write(out); err != nil {
			return fmt.Errorf("openmetrics output: %w", err)
		}
		res.writeT += time.Since(t)
		res.written += n
		return nil
	}
	if err := be.Write(ctx, out); err != nil {
		return err
	}
	res.writeT += time.Since(t)
	res.written += n
	t = time.Now()
	if err := m.verify(ctx, be, sl, out); err != nil {
		return err
	}
	res.verifyT += time.Since(t)
	return nil
}
