package rules

import (
	"encoding/binary"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// run is one series on its way through the rules: what the engine keeps of
// it between two rules. The steps below are the one implementation of a
// ruleset's semantics; apply takes one series through every rule
// (series-major), applyBatch takes a batch rule by rule (rule-major), and
// both call the same steps in the same order for each series, so they
// count, record and cache the same. A run is used by one goroutine at a
// time (it lives in a pooled scratch or batch).
//
// The steps read the series' labels through the scratch's view
// (scratch.view), which must be the run's own while they run: apply has
// one run and leaves its view in the scratch; applyBatch swaps each run's
// view in (scratch.swapView) around its steps.
type run struct {
	// The series itself is passed to the steps, not kept here: a pointer
	// kept in a pooled run would make the caller's series escape.
	// cur are the labels as left by the enforcing rules so far.
	cur labels.Labels
	// skip holds the name-only rules that certainly leave a series of this
	// name alone; valid until a rule changes the series (see apply).
	skip uint64
	// key and h are the series cache key and its hash (when useCache).
	key []byte
	h   uint64
	// tuBits has bit i set when rule i (< 64) skipped type checks.
	tuBits uint64
	// hit: some rule acted or would have (any mode); cacheable: no
	// on_error verdict and no type-unknown rule past 64; changed: an
	// enforcing rule changed cur.
	hit, cacheable, changed bool
	lastRule, lastReason    string
	lastIdx                 int
	// res is the outcome once the run is done (begin or settle returned
	// true); done says so (applyBatch only).
	res  Result
	done bool

	// view holds the run's label view while another run's is in the
	// scratch (applyBatch only).
	view lview
	// in is the run's input to a batch stage (applyBatch only).
	in StageInput
}

// swapView exchanges the scratch's label view with v (no copying: lview is
// a slice header).
func (sc *scratch) swapView(v *lview) { sc.view, *v = *v, sc.view }

// begin starts rn for s: the series cache answers a series no rule acts
// on, else the name cache's skip mask is taken and the view set to s. It
// reports true when rn is done (rn.res holds the outcome). tr != nil
// (a trace) or e.noShortcuts evaluates every rule.
func (e *Engine) begin(rn *run, s *Series, fx *Effects, sc *scratch, tr *Trace) bool {
	useCache := tr == nil && !e.noShortcuts
	if useCache {
		rn.key = seriesKey(rn.key[:0], s)
		if e.live != nil {
			// Remembered under the live stages' epoch (LiveStage).
			rn.key = binary.BigEndian.AppendUint64(rn.key, e.Epoch())
		}
		rn.h = hashKey(rn.key)
		if tu, ok := e.seen.get(rn.key, rn.h); ok {
			e.replayTypeUnknown(tu)
			fx.typeUnknownMask(tu)
			rn.res = Result{Action: Kept, Labels: s.Labels}
			return true
		}
	}
	// Field by field: zeroing the whole run (its buffers included) costs
	// the hot path.
	rn.cur, rn.skip, rn.tuBits = s.Labels, 0, 0
	rn.hit, rn.cacheable, rn.changed, rn.done = false, true, false, false
	rn.lastRule, rn.lastReason, rn.lastIdx = "", "", 0
	if useCache && e.names != nil {
		rn.skip = e.names.skipMask(rn.cur.Get(model.MetricNameLabel), e.rules, sc)
	}
	sc.view.reset(rn.cur)
	return false
}

// admit decides whether rule i (r) applies to rn: applies is false when
// the name cache skips it or it is out of scope; ask is false when the
// rule's probe proves that its stage would find nothing; typeUnknown is the
// probe's. The scratch's view must be rn's.
func (e *Engine) admit(i int, r *rule, s *Series, rn *run, sc *scratch, tr *Trace) (applies, ask, typeUnknown bool) {
	if rn.skip != 0 && rn.skip&e.names.ruleBit[i] != 0 {
		return false, false, false
	}
	if !r.inScope(s.Tenant, &sc.view) {
		if tr != nil {
			tr.add(TraceStep{Rule: r.name, Kind: r.kind, Mode: r.mode, Effect: EffectOutOfScope})
		}
		return false, false, false
	}
	if e.noShortcuts {
		return true, true, false
	}
	ask, typeUnknown = r.probe(&s.Meta, sc)
	return true, ask, typeUnknown
}

// step is rule i (r) on rn, one series at a time: admit, ask the stage
// (Eval) when the probe cannot rule it out, settle. It reports true when
// rn is done. sc.in must carry the scratch's builder.
func (e *Engine) step(i int, r *rule, s *Series, rn *run, fx *Effects, sc *scratch, tr *Trace) bool {
	applies, ask, typeUnknown := e.admit(i, r, s, rn, sc, tr)
	if !applies {
		return false
	}
	var v StageVerdict
	if ask {
		sc.in.Tenant = s.Tenant
		v = r.eval(rn.cur, &s.Meta, sc, r.wantLabels(tr))
	}
	return e.settle(i, r, rn, fx, sc, tr, &v, typeUnknown)
}

// wantLabels reports whether rule r's stage must build the labels of its
// rewrite and tag verdicts (not needed to only count a shadow hit).
func (r *rule) wantLabels(tr *Trace) bool { return r.mode == ModeEnforce || tr != nil }

// settle takes rule i's verdict v on rn, recording in fx (may be nil) (the zero verdict when the rule
// was not asked): it counts and records it, traces it, and applies it in
// enforce mode. It reports true when rn is done (dropped; rn.res holds the
// outcome). The scratch's view must be rn's; settle keeps it current.
func (e *Engine) settle(i int, r *rule, rn *run, fx *Effects, sc *scratch, tr *Trace, v *StageVerdict, typeUnknown bool) bool {
	count := tr == nil // traces never count into the live rule metrics
	typeUnknown = typeUnknown || v.TypeUnknown
	if v.Transient {
		// An on_error verdict: neither cache may remember it.
		rn.cacheable = false
		fx.forget()
	}
	if typeUnknown {
		if i < 64 {
			rn.tuBits |= 1 << i
		} else {
			rn.cacheable = false
		}
		if count {
			r.metrics.typeUnknown.inc()
		}
		fx.add(i, effectTypeUnknown)
	}
	if !v.Hit() {
		if tr != nil {
			tr.add(TraceStep{Rule: r.name, Kind: r.kind, Mode: r.mode, InScope: true, TypeUnknown: typeUnknown, Effect: EffectNone})
		}
		return false
	}
	rn.hit = true
	if count {
		r.metrics.series[actionIndex(v.Action)].inc()
	}
	fx.add(i, uint8(actionIndex(v.Action)))
	if tr != nil {
		tr.add(r.traceStep(*v, rn.cur))
	}
	if r.mode == ModeShadow {
		return false
	}
	switch v.Action {
	case ActionDrop:
		rn.res = Result{Action: Dropped, Labels: rn.cur, Rule: r.name, Reason: v.Reason}
		return true
	case ActionRewrite, ActionTag:
		if !labels.Equal(v.Labels, rn.cur) { // e.g. already tagged by this rule
			rn.cur = v.Labels
			rn.changed = true
			rn.skip = 0
			sc.view.reset(rn.cur)
			rn.lastRule, rn.lastReason, rn.lastIdx = r.name, v.Reason, i
		}
	}
	return false
}

// finish ends a run that every rule let through: an untouched series is
// remembered in the series cache, a changed one is checked for validity.
func (e *Engine) finish(s *Series, rn *run, fx *Effects, tr *Trace) Result {
	if !rn.changed {
		if tr == nil && !e.noShortcuts && !rn.hit && rn.cacheable {
			e.seen.add(rn.key, rn.h, rn.tuBits)
		}
		return Result{Action: Kept, Labels: s.Labels}
	}
	cur := rn.cur
	if reason := e.invalid(cur); reason != "" {
		reason = fmt.Sprintf("series invalid after rule %q: %s", rn.lastRule, reason)
		if tr == nil {
			e.metrics.invalid(rn.lastRule)
		}
		fx.add(rn.lastIdx, effectInvalid)
		if tr != nil {
			tr.add(TraceStep{Rule: rn.lastRule, Kind: KindValidation, Mode: ModeEnforce, InScope: true, Matched: true,
				Action: ActionDrop, Effect: EffectDropped, Reason: reason, Before: cur.String()})
		}
		return Result{Action: Dropped, Labels: cur, Rule: rn.lastRule, Reason: reason}
	}
	return Result{Action: Changed, Labels: cur, Rule: rn.lastRule, Reason: rn.lastReason}
}

// release drops what rn references of its caller's series, so that a
// pooled run does not keep them alive (its buffers stay).
func (rn *run) release() {
	rn.cur, rn.res, rn.in = labels.Labels{}, Result{}, StageInput{}
	rn.lastRule, rn.lastReason = "", ""
}
