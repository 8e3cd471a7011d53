package rules

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
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
	fm *labels.FastRegexMatcher
	m  sync.Map // string → bool
	n  atomic.Int64
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
	if v, ok := mm.m.Load(s); ok {
		return v.(bool)
	}
	ok := mm.fm.MatchString(s)
	if mm.n.Load() < maxMemoEntries {
		if _, loaded := mm.m.LoadOrStore(strings.Clone(s), ok); !loaded {
			mm.n.Add(1)
		}
	}
	return ok
}
