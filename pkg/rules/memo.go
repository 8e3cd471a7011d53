package rules

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// maxMemoEntries bounds each matchMemo. Once full, further values are
// matched by the regex every time (the results stay exact; only the cache
// stops growing).
const maxMemoEntries = 4096

// matchMemo remembers the outcome of a regex that Prometheus' matcher could
// not optimise (it falls back to backtracking), per input value. Relabel
// source values repeat heavily (metric names, "job;env" pairs), so most
// lookups hit. A regex match is a pure function of its input, so the memo
// never changes an outcome. Safe for concurrent use; lookups do not
// allocate.
type matchMemo struct {
	fm   *labels.FastRegexMatcher
	memo boundedMemo[bool]
}

// newMatchMemo returns a memo for fm, or nil when fm is already fast
// (literal, prefix, suffix, set matches).
func newMatchMemo(fm *labels.FastRegexMatcher) *matchMemo {
	if fm.IsOptimized() {
		return nil
	}
	return &matchMemo{fm: fm}
}

// match reports whether s matches. s may alias a reused buffer: it is
// copied before it is stored.
func (mm *matchMemo) match(s string) bool {
	if ok, found := mm.memo.get(s); found {
		return ok
	}
	ok := mm.fm.MatchString(s)
	mm.memo.put(s, ok)
	return ok
}

// replaceMemo remembers what a replace config makes of a source value:
// the label it sets or deletes, and the value. Replace's outcome is a pure
// function of the source value (the regex match, then the target and
// replacement templates expanded with its groups), and source values
// repeat heavily (instances, jobs), so a repeat costs a lookup instead of
// a regex match and three allocations. Bounded like matchMemo. Safe for
// concurrent use.
type replaceMemo struct {
	cfg  *relabel.Config
	memo boundedMemo[replaceOutcome]
}

// replaceOutcome is what one source value does.
type replaceOutcome struct {
	skip   bool   // the regex does not match, or the target is not a valid label name
	target string // the label set (or deleted when value is "")
	value  string
}

// outcome returns what cfg's replace does with source value val (which
// may alias a reused buffer), exactly as relabel.ProcessBuilder's Replace.
func (rm *replaceMemo) outcome(val string) replaceOutcome {
	if o, found := rm.memo.get(val); found {
		return o
	}
	o := replaceOf(rm.cfg, val) // its strings are its own, never val's bytes
	rm.memo.put(val, o)
	return o
}

// replaceOf is relabel's Replace action on source value val, as an
// outcome (prometheus/model/relabel, relabel(), case Replace).
func replaceOf(cfg *relabel.Config, val string) replaceOutcome {
	if val == "" && cfg.Regex == relabel.DefaultRelabelConfig.Regex &&
		!strings.Contains(cfg.TargetLabel, "$") && !strings.Contains(cfg.Replacement, "$") {
		return replaceOutcome{target: cfg.TargetLabel, value: cfg.Replacement}
	}
	indexes := cfg.Regex.FindStringSubmatchIndex(val)
	if indexes == nil {
		return replaceOutcome{skip: true}
	}
	target := string(cfg.Regex.ExpandString(nil, cfg.TargetLabel, val, indexes))
	if !cfg.NameValidationScheme.IsValidLabelName(target) {
		return replaceOutcome{skip: true}
	}
	return replaceOutcome{target: target, value: string(cfg.Regex.ExpandString(nil, cfg.Replacement, val, indexes))}
}

// boundedMemo maps strings to V, holding at most maxMemoEntries (then it
// stops growing), with lookups a memoGate turns off while they do not
// pay. Safe for concurrent use; lookups do not allocate.
type boundedMemo[V any] struct {
	m    sync.Map // string → V
	n    atomic.Int64
	gate memoGate
}

// get returns what s maps to, when the gate lets the lookup happen.
func (b *boundedMemo[V]) get(s string) (v V, found bool) {
	full := b.n.Load() >= maxMemoEntries
	if !b.gate.look(full) {
		return v, false
	}
	x, ok := b.m.Load(s)
	if !ok {
		return v, false
	}
	b.gate.hit(full)
	return x.(V), true
}

// put maps s (which may alias a reused buffer: it is copied) to v, unless
// the memo is full.
func (b *boundedMemo[V]) put(s string, v V) {
	if b.n.Load() >= maxMemoEntries {
		return
	}
	if _, loaded := b.m.LoadOrStore(strings.Clone(s), v); !loaded {
		b.n.Add(1)
	}
}

// memoGate turns a full memo's lookups off while they do not pay. A memo
// pays only when values repeat: a source label unique to each series (an
// id) fills it with values that never come back, and every lookup is then
// a miss paid on top of the regex (9 % of a distributor's CPU at a million
// series). Once the memo is full, the gate counts, over windows of
// memoWindow calls, how many of the lookups hit; after a window with
// fewer than one hit in four, lookups are off for the next window except
// one call in memoSample, so that the memo comes back when values repeat
// again. Outcomes never depend on it. Safe for concurrent use.
type memoGate struct {
	calls, looked, hits atomic.Int64
	off                 atomic.Bool
}

const (
	memoWindow = 1 << 14
	memoSample = 16
)

// look reports whether a call should look the memo up (full: the memo is
// full; until then every call does).
func (g *memoGate) look(full bool) bool {
	if !full {
		return true
	}
	c := g.calls.Add(1)
	if c >= memoWindow && g.calls.CompareAndSwap(c, 0) {
		looked, hits := g.looked.Swap(0), g.hits.Swap(0)
		g.off.Store(looked > 0 && hits*4 < looked)
	}
	if g.off.Load() && c%memoSample != 0 {
		return false
	}
	g.looked.Add(1)
	return true
}

// hit counts a lookup that found its value.
func (g *memoGate) hit(full bool) {
	if full {
		g.hits.Add(1)
	}
}
