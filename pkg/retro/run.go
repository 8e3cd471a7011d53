package retro

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/aggregate"
)

// run plans and, for execute jobs, executes job id until it ends, fails,
// pauses on an error or ctx ends (process shutdown: the job stays running in
// the store and resumes on the next start; cancel: Cancel already saved it).
func (m *Manager) run(ctx context.Context, id string) {
	j, _ := m.Get(id)
	logger := m.d.Logger.With("job", id)
	fail := func(state string, err error) {
		if ctx.Err() != nil {
			return // shutdown or cancel: not an error of the job
		}
		logger.Warn("retrospective job stopped", "state", state, "err", err)
		_ = m.update(id, func(j *Job) { j.State = state; j.Error = err.Error(); j.logf("%s: %v", state, err) })
	}
	be, err := m.d.NewBackend(*j.Spec.Backend)
	if err != nil {
		fail(StateFailed, err)
		return
	}
	if c, ok := be.(interface{ Close() }); ok {
		defer c.Close()
	}
	eng, err := compileRules(j.Rules)
	if err != nil {
		fail(StateFailed, err)
		return
	}
	defer eng.Close(context.Background())
	aggCfg, agg, err := compileAggregations(j.Aggregations)
	if err != nil {
		fail(StateFailed, err)
		return
	}
	spec := j.Spec
	lim := newLimiter(spec.Throttles)
	items, planned, err := m.store.loadPlan(ctx, id)
	if err != nil {
		fail(StatePaused, err)
		return
	}
	if planned && j.DryRun == nil {
		// Stopped between saving the plan and recording its dry run: no
		// batch has run; plan again (planning only reads).
		planned = false
	}
	if !planned {
		_ = m.update(id, func(j *Job) { j.State = StatePlanning })
		var dr DryRun
		items, dr, err = plan(ctx, be, eng, agg, &spec, m.d.Config.BatchSeries, m.d.Config.Slice, lim, nil)
		if err != nil {
			fail(StatePaused, err)
			return
		}
		if err := m.store.savePlan(ctx, id, items); err != nil {
			fail(StatePaused, err)
			return
		}
		logger.Info("retrospective job planned", "series_affected", dr.SeriesAffected, "samples", dr.SamplesAffected, "merged", dr.SeriesMerged, "dropped", dr.SeriesDropped)
		nb := len(batchRanges(items, m.d.Config.BatchSeries))
		_ = m.update(id, func(j *Job) {
			j.DryRun = &dr
			j.Progress.SeriesTotal, j.Progress.SamplesTotal = dr.SeriesAffected, dr.SamplesAffected
			j.Progress.BatchesTotal = nb
			j.Done = make([]bool, nb)
			j.logf("planned: %d series affected (%d renamed, %d relabelled, %d dropped, %d merged), %d samples", dr.SeriesAffected, dr.SeriesRenamed, dr.SeriesRelabelled, dr.SeriesDropped, dr.SeriesMerged, dr.SamplesAffected)
		})
		j, _ = m.Get(id)
	}
	if spec.Mode == ModeDryRun {
		_ = m.update(id, func(j *Job) { j.State = StateSucceeded; j.logf("dry run done") })
		return
	}
	if err := mergeError(*j.DryRun); err != nil {
		fail(StateFailed, err)
		return
	}
	if spec.Mode == ModeExecute {
		if err := preflight(ctx, be, &spec); err != nil {
			fail(StateFailed, err)
			return
		}
	}
	_ = m.update(id, func(j *Job) { j.State = StateRunning })
	if err := m.execute(ctx, id, be, aggCfg, items, j.Done, lim); err != nil {
		fail(StatePaused, err)
		return
	}
	if ctx.Err() != nil {
		return
	}
	if c, ok := be.(TombstoneCleaner); ok && spec.CleanTombstones {
		// After every delete: a failure pauses the job, and resuming it
		// (every batch done) cleans again.
		if err := c.CleanTombstones(ctx); err != nil {
			fail(StatePaused, fmt.Errorf("clean_tombstones: %w", err))
			return
		}
		_ = m.update(id, func(j *Job) { j.logf("tombstones cleaned") })
	}
	_ = m.update(id, func(j *Job) {
		j.State = StateSucceeded
		j.Progress.ETASeconds = 0
		j.logf("done: %d series, %d samples written, %d series deleted", j.Progress.SeriesDone, j.Progress.SamplesWritten, j.Progress.SeriesDeleted)
	})
	logger.Info("retrospective job done")
}

// batchResult is what one batch did.
type batchResult struct {
	series, read, written, deleted int64
	// time spent in each step
	readT, writeT, verifyT, deleteT time.Duration
}

// execute runs the batches not yet done, MaxConcurrency at a time, and
// checkpoints each. It returns the first batch error.
func (m *Manager) execute(ctx context.Context, id string, be Backend, agg aggregate.Config, items []Item, done []bool, lim *limiter) error {
	j, _ := m.Get(id)
	spec := j.Spec
	ranges := batchRanges(items, m.d.Config.BatchSeries)
	if len(ranges) != len(done) {
		return fmt.Errorf("the plan has %d batches, the checkpoint %d: the job's record does not match its plan", len(ranges), len(done))
	}
	began := time.Now()
	var startSeries, startSamples int64 = j.Progress.SeriesDone, j.Progress.SamplesRead
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var (
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	for w := 0; w < spec.Throttles.MaxConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				part := items[ranges[b][0]:ranges[b][1]]
				res, err := m.runBatch(ctx, id, b, be, agg, &spec, part, lim)
				if err != nil {
					if ctx.Err() == nil {
						m.metrics.batches.WithLabelValues("failed").Inc()
					}
					errOnce.Do(func() { first = fmt.Errorf("batch %d: %w", b, err); cancel() })
					return
				}
				m.d.Logger.Info("retrospective batch done", "job", id, "batch", b, "series", res.series, "samples_read", res.read, "samples_written", res.written, "series_deleted", res.deleted,
					"read", res.readT, "write", res.writeT, "verify", res.verifyT, "delete", res.deleteT)
				err = m.update(id, func(j *Job) {
					p := &j.Progress
					j.Done[b] = true
					p.BatchesDone++
					p.SeriesDone += res.series
					p.SamplesRead += res.read
					p.SamplesWritten += res.written
					p.SeriesDeleted += res.deleted
					el := time.Since(began).Seconds()
					p.SamplesPerSecond = float64(p.SamplesRead-startSamples) / el
					p.SeriesPerSecond = float64(p.SeriesDone-startSeries) / el
					if p.SeriesPerSecond > 0 {
						p.ETASeconds = math.Round(float64(p.SeriesTotal-p.SeriesDone) / p.SeriesPerSecond)
					}
					j.logf("batch %d: %d series, read %d samples, wrote %d, deleted %d series (read %s, write %s, verify %s, delete %s)", b, res.series, res.read, res.written, res.deleted,
						res.readT.Round(time.Millisecond), res.writeT.Round(time.Millisecond), res.verifyT.Round(time.Millisecond), res.deleteT.Round(time.Millisecond))
				})
				if err != nil {
					m.metrics.batches.WithLabelValues("failed").Inc()
					errOnce.Do(func() { first = fmt.Errorf("checkpoint batch %d: %w", b, err); cancel() })
					return
				}
				m.metrics.batchDone(res)
			}
		}()
	}
feed:
	for b := range done {
		if done[b] {
			continue
		}
		select {
		case work <- b:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return first
}

// runBatch runs batch b of job id: into the backend (batch), or for an
// openmetrics job into the batch's file, committed only when the whole
// batch is written.
func (m *Manager) runBatch(ctx context.Context, id string, b int, be Backend, agg aggregate.Config, spec *Spec, part []Item, lim *limiter) (batchResult, error) {
	if spec.Mode != ModeOpenMetrics {
		return m.batch(ctx, be, spec, agg, part, lim, nil)
	}
	om, err := m.openMetricsBatch(id, b)
	if err != nil {
		return batchResult{}, fmt.Errorf("openmetrics output: %w", err)
	}
	res, err := m.batch(ctx, be, spec, agg, part, lim, om)
	if err == nil {
		err = om.commit(ctx)
	}
	if err != nil {
		om.abort()
	}
	return res, err
}

// batch copies, verifies and (when asked) deletes one batch of series: it
// copies and verifies the batch slice by slice (Config.Slice) in time order,
// then deletes the originals over the whole range once every slice is
// verified. A batch redone after a crash copies its slices again
// (idempotent) and deletes nothing before they are all verified.
// With om, the copies go to om instead of the backend, unverified. The
// inputs of aggregation rules among part are folded into their outputs
// (aggregate.go) after the copies, before any delete.
func (m *Manager) batch(ctx context.Context, be Backend, spec *Spec, agg aggregate.Config, part []Item, lim *limiter, om *omBatch) (batchResult, error) {
	res := batchResult{series: int64(len(part))}
	if err := lim.series(ctx, len(part)); err != nil {
		return res, err
	}
	var rewrite, del []labels.Labels
	var folded []Item
	target := map[string]labels.Labels{}
	for _, it := range part {
		switch it.Action {
		case ActionRewrite:
			rewrite = append(rewrite, it.Source)
			target[it.Source.String()] = it.Target
		case ActionAggregate:
			folded = append(folded, it)
		}
		if spec.DeleteOriginals {
			del = append(del, it.Source)
		}
	}
	for _, sl := range sliceRange(spec.startMs(), spec.endMs(), m.d.Config.Slice.Milliseconds()) {
		if err := m.copySlice(ctx, be, rewrite, target, sl, lim, om, &res); err != nil {
			return res, err
		}
	}
	if err := m.aggregateBatch(ctx, be, spec, agg, folded, lim, om, &res); err != nil {
		return res, err
	}
	if len(del) > 0 {
		t := time.Now()
		if err := be.Delete(ctx, del, spec.startMs(), spec.endMs()); err != nil {
			return res, err
		}
		res.deleted = int64(len(del))
		res.deleteT = time.Since(t)
	}
	return res, nil
}

// timeSlice is [start, end] in milliseconds, inclusive.
type timeSlice struct{ start, end int64 }

// sliceRange cuts [start, end] into consecutive slices of step ms (the
// last one shorter), in time order.
func sliceRange(start, end, step int64) []timeSlice {
	var out []timeSlice
	for s := start; ; s += step {
		if end-s < step {
			return append(out, timeSlice{s, end})
		}
		out = append(out, timeSlice{s, s + step - 1})
	}
}

// copySlice reads the series of rewrite in sl, writes them under their
// target labels and verifies the copy, adding to res.
func (m *Manager) copySlice(ctx context.Context, be Backend, rewrite []labels.Labels, target map[string]labels.Labels, sl timeSlice, lim *limiter, om *omBatch, res *batchResult) error {
	if len(rewrite) == 0 {
		return nil // a batch of drops and aggregation inputs: nothing to read
	}
	t := time.Now()
	step := func(d *time.Duration) { now := time.Now(); *d += now.Sub(t); t = now }
	src, err := be.Read(ctx, rewrite, sl.start, sl.end)
	if err != nil {
		return err
	}
	step(&res.readT)
	out := make([]Series, len(src))
	var read int64
	for i, s := range src {
		read += int64(s.count())
		out[i] = Series{Labels: target[s.Labels.String()], Samples: s.Samples, Histograms: s.Histograms}
	}
	if len(out) == 0 {
		return nil // nothing stored in this slice
	}
	res.read += read
	if err := lim.samples(ctx, int(read)); err != nil {
		return err
	}
	t = time.Now() // the throttle's wait is not the backend's time
	if om != nil {
		if err := om.write(out); err != nil {
			return fmt.Errorf("openmetrics output: %w", err)
		}
		step(&res.writeT)
		res.written += read
		return nil
	}
	if err := be.Write(ctx, out); err != nil {
		return err
	}
	step(&res.writeT)
	res.written += read
	if err := m.verify(ctx, be, sl, out); err != nil {
		return err
	}
	step(&res.verifyT)
	return nil
}

// errNotVerified is a copy that was not readable in time.
var errNotVerified = errors.New("copy not verified")

// verify reads the written series back until every sample of want is there
// with its timestamp and value, within Config.VerifyTimeout.
func (m *Manager) verify(ctx context.Context, be Backend, sl timeSlice, want []Series) error {
	if len(want) == 0 {
		return nil
	}
	ls := make([]labels.Labels, len(want))
	for i, s := range want {
		ls[i] = s.Labels
	}
	deadline := time.Now().Add(m.d.Config.VerifyTimeout)
	for {
		got, err := be.Read(ctx, ls, sl.start, sl.end)
		if err != nil {
			return err
		}
		missing := missingSamples(want, got)
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %s: %s; originals kept", errNotVerified, m.d.Config.VerifyTimeout, missing)
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// missingSamples describes the first sample of want that got lacks, "" when
// none.
func missingSamples(want, got []Series) string {
	have := make(map[string]map[int64]float64, len(got))
	for _, s := range got {
		m := make(map[int64]float64, len(s.Samples))
		for _, smp := range s.Samples {
			m[smp.T] = smp.V
		}
		have[s.Labels.String()] = m
	}
	haveH := map[string]map[int64]Histogram{}
	for _, s := range got {
		if len(s.Histograms) == 0 {
			continue
		}
		m := make(map[int64]Histogram, len(s.Histograms))
		for _, h := range s.Histograms {
			m[h.T] = h
		}
		haveH[s.Labels.String()] = m
	}
	for _, s := range want {
		m := have[s.Labels.String()]
		for _, smp := range s.Samples {
			v, ok := m[smp.T]
			if !ok || !(v == smp.V || math.IsNaN(v) && math.IsNaN(smp.V)) {
				return fmt.Sprintf("%s has no sample %v at %d", s.Labels, smp.V, smp.T)
			}
		}
		mh := haveH[s.Labels.String()]
		for _, h := range s.Histograms {
			g, ok := mh[h.T]
			if !ok || !g.float().Equals(h.float()) {
				return fmt.Sprintf("%s has no native histogram sample %s at %d", s.Labels, h.float(), h.T)
			}
		}
	}
	return ""
}
