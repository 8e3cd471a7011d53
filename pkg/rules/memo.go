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
	m    sync.Map // string → bool
	n    atomic.Int64
	gate memoGate
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
	full := mm.n.Load() >= maxMemoEntries
	if mm.gate.look(full) {
		if v, ok := mm.m.Load(s); ok {
			mm.gate.hit(full)
			return v.(bool)
		}
	}
	ok := mm.fm.MatchString(s)
	if !full {
		if _, loaded := mm.m.LoadOrStore(strings.Clone(s), ok); !loaded {
			mm.n.Add(1)
		}
	}
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
	m    sync.Map // string → replaceOutcome
	n    atomic.Int64
	gate memoGate
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
	full := rm.n.Load() >= maxMemoEntries
	if rm.gate.look(full) {
		if v, ok := rm.m.Load(val); ok {
			rm.gate.hit(full)
			return v.(replaceOutcome)
		}
	}
	val = strings.Clone(val)
	o := replaceOf(rm.cfg, val)
	if !full {
		if _, loaded := rm.m.LoadOrStore(val, o); !loaded {
			rm.n.Add(1)
		}
	}
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
