package rules

import "fmt"

// MaxBatch is the most series ApplyBatch and ApplyBatchRecorded take
// through the rules together; longer batches go in chunks of MaxBatch
// (each chunk is one EvalBatch call per batch stage).
const MaxBatch = 512

// HasBatchStages reports whether some rule's stage is a BatchStage (a rule
// of kind plugin), the case where ApplyBatch saves work over Apply: without
// one, ApplyBatch does what a loop of Apply does.
func (e *Engine) HasBatchStages() bool { return e.hasBatch }

// ApplyBatch sets out[i] to Apply(&ss[i], nil) for every series of ss
// (len(out) == len(ss)), applying the rules rule by rule over the batch:
// a rule whose stage is a BatchStage is asked once per batch (chunks of
// MaxBatch) about the series it applies to, each as left by the rules
// before it. The outcomes, rule counters and caches are those of applying
// the series one by one in order, with two differences a deterministic
// stage cannot tell apart: a series repeated within one batch is evaluated
// each time instead of being answered by the engine's cache from its first
// time, and a batch stage that fails as a whole (a plugin's timeout or
// trap) gives its on_error verdict to every series of its call, not only
// to the one it failed on. Safe for concurrent use; it does not modify ss.
func (e *Engine) ApplyBatch(ss []Series, out []Result) { e.applyBatch(ss, nil, out) }

// ApplyBatchRecorded is ApplyBatch that also records in fxs[i] the rule
// counters series i incremented, as ApplyRecorded(&ss[i], &fxs[i]) does
// (len(fxs) == len(ss); each is reset first).
func (e *Engine) ApplyBatchRecorded(ss []Series, fxs []Effects, out []Result) {
	if len(fxs) != len(ss) {
		panic(fmt.Sprintf("rules: ApplyBatchRecorded with %d effects for %d series", len(fxs), len(ss)))
	}
	clear(fxs)
	e.applyBatch(ss, fxs, out)
}

// batch is applyBatch's working state, pooled with the engine's scratch
// buffers so that a warm batch does not allocate.
type batch struct {
	runs     []run
	live     []int32 // the runs not done yet, in batch order
	pending  []int32 // the runs a batch stage is asked about
	tus      []bool  // their probes' typeUnknown
	ins      []*StageInput
	verdicts []StageVerdict
}

func (e *Engine) applyBatch(ss []Series, fxs []Effects, out []Result) {
	if len(out) != len(ss) {
		panic(fmt.Sprintf("rules: ApplyBatch with %d results for %d series", len(out), len(ss)))
	}
	if len(e.rules) == 0 {
		for i := range ss {
			out[i] = Result{Action: Kept, Labels: ss[i].Labels}
		}
		return
	}
	sc := e.scratchs.Get().(*scratch)
	defer e.scratchs.Put(sc)
	b, _ := e.batches.Get().(*batch)
	if b == nil {
		b = &batch{}
	}
	defer e.batches.Put(b)
	for off := 0; off < len(ss); off += MaxBatch {
		end := min(off+MaxBatch, len(ss))
		var chunkFx []Effects
		if fxs != nil {
			chunkFx = fxs[off:end]
		}
		e.applyChunk(ss[off:end], chunkFx, out[off:end], sc, b)
	}
}

// fxAt is &fxs[j], or nil when nothing is recorded.
func fxAt(fxs []Effects, j int32) *Effects {
	if fxs == nil {
		return nil
	}
	return &fxs[j]
}

// applyChunk applies the rules to at most MaxBatch series, rule by rule.
// Each run's steps are the ones apply takes, with the run's label view
// swapped into sc around them.
func (e *Engine) applyChunk(ss []Series, fxs []Effects, out []Result, sc *scratch, b *batch) {
	if cap(b.runs) < len(ss) {
		b.runs = append(b.runs[:cap(b.runs)], make([]run, len(ss)-cap(b.runs))...)
	}
	runs := b.runs[:len(ss)]
	defer func() {
		for j := range runs {
			runs[j].release()
		}
	}()
	sc.in = StageInput{Builder: sc.lb}
	b.live = b.live[:0]
	for j := range ss {
		rn := &runs[j]
		sc.swapView(&rn.view)
		done := e.begin(rn, &ss[j], fxAt(fxs, int32(j)), sc, nil)
		sc.swapView(&rn.view)
		if done {
			out[j] = rn.res
			continue
		}
		b.live = append(b.live, int32(j))
	}
	for i, r := range e.rules {
		if len(b.live) == 0 {
			return
		}
		if r.batch == nil {
			for _, j := range b.live {
				rn := &runs[j]
				sc.swapView(&rn.view)
				rn.done = e.step(i, r, &ss[j], rn, fxAt(fxs, j), sc, nil)
				sc.swapView(&rn.view)
			}
		} else {
			e.stepBatch(i, r, ss, runs, fxs, sc, b)
		}
		keep := b.live[:0]
		for _, j := range b.live {
			if runs[j].done {
				out[j] = runs[j].res
				continue
			}
			keep = append(keep, j)
		}
		b.live = keep
	}
	for _, j := range b.live {
		out[j] = e.finish(&ss[j], &runs[j], fxAt(fxs, j), nil)
	}
}

// stepBatch is rule i (r, a batch stage) on the live runs: each is
// admitted as step admits it, the ones the probe cannot rule out go to one
// EvalBatch, and every admitted run settles its verdict.
func (e *Engine) stepBatch(i int, r *rule, ss []Series, runs []run, fxs []Effects, sc *scratch, b *batch) {
	b.pending, b.tus, b.ins = b.pending[:0], b.tus[:0], b.ins[:0]
	want := r.wantLabels(nil)
	for _, j := range b.live {
		rn := &runs[j]
		sc.swapView(&rn.view)
		applies, ask, typeUnknown := e.admit(i, r, &ss[j], rn, sc, nil)
		if applies && !ask {
			var none StageVerdict // never done: it acts on nothing
			e.settle(i, r, rn, fxAt(fxs, j), sc, nil, &none, typeUnknown)
		}
		sc.swapView(&rn.view)
		if !ask {
			continue
		}
		rn.in = StageInput{Tenant: ss[j].Tenant, Labels: rn.cur, Meta: ss[j].Meta, WantLabels: want, Builder: sc.lb}
		b.pending = append(b.pending, j)
		b.tus = append(b.tus, typeUnknown)
		b.ins = append(b.ins, &rn.in)
	}
	if len(b.pending) == 0 {
		return
	}
	if cap(b.verdicts) < len(b.pending) {
		b.verdicts = make([]StageVerdict, len(b.pending), MaxBatch)
	}
	vs := b.verdicts[:len(b.pending)]
	clear(vs)
	r.batch.EvalBatch(b.ins, vs)
	for k, j := range b.pending {
		rn := &runs[j]
		sc.swapView(&rn.view)
		rn.done = e.settle(i, r, rn, fxAt(fxs, j), sc, nil, &vs[k], b.tus[k])
		sc.swapView(&rn.view)
		rn.in = StageInput{}
	}
	clear(vs)
	clear(b.ins)
}
