package rules

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// maxNameCacheEntries bounds an engine's per-metric-name cache. Once full,
// names not in it are evaluated rule by rule (the outcome is the same, only
// slower).
const maxNameCacheEntries = 65536

// maxNameRules is how many name-only rules the cache tracks (a bit each).
const maxNameRules = 64

// nameCache remembers, per metric name, which "name-only" rules certainly
// leave a series of that name alone. A rule is name-only when its selector
// (if any) and its checks read nothing but __name__: relabel rules whose
// configs are all drop/keep/replace with source_labels [__name__], and
// naming rules without type or unit checks. For those the decision is a
// pure function of the name, so it can be computed once per name and
// reused; tenant scopes are still checked per series. Safe for concurrent
// use; a hit does not allocate.
type nameCache struct {
	ruleBit []uint64 // per engine rule: its bit, 0 when not name-only
	m       sync.Map // metric name → uint64 mask of rules to skip
	n       atomic.Int64
}

// newNameCache returns a cache for rules, or nil when none is name-only.
func newNameCache(rules []*rule) *nameCache {
	nc := &nameCache{ruleBit: make([]uint64, len(rules))}
	next := 0
	for i, r := range rules {
		if next < maxNameRules && r.nameOnly() {
			nc.ruleBit[i] = 1 << next
			next++
		}
	}
	if next == 0 {
		return nil
	}
	return nc
}

// nameOnly reports whether the rule's scope selector and checks read only
// the metric name (and the tenant, which is checked separately).
func (r *rule) nameOnly() bool {
	for _, m := range r.matchers {
		if m.Name != model.MetricNameLabel {
			return false
		}
	}
	switch r.kid {
	case kindRelabel:
		for i := range r.relabel {
			c := r.relabel[i].cfg
			switch c.Action {
			case relabel.Drop, relabel.Keep, relabel.Replace:
			default:
				return false
			}
			if len(c.SourceLabels) != 1 || c.SourceLabels[0] != model.MetricNameLabel {
				return false
			}
		}
		return true
	case kindNaming:
		return !r.naming.typeSuffixes && !r.naming.unitSuffixes
	default:
		return false
	}
}

// skipMask returns the bits of the name-only rules that leave a series
// named name alone, computing and remembering them on a miss.
func (nc *nameCache) skipMask(name string, rules []*rule, sc *scratch) uint64 {
	if v, ok := nc.m.Load(name); ok {
		return v.(uint64)
	}
	ls := labels.FromStrings(model.MetricNameLabel, name)
	sc.view.reset(ls) // the caller resets the view to the series afterwards
	var md Metadata
	var mask uint64
	for i, r := range rules {
		bit := nc.ruleBit[i]
		if bit == 0 {
			continue
		}
		if !r.inScopeIgnoringTenant(&sc.view) {
			mask |= bit
			continue
		}
		if maybe, _ := r.probe(&md, sc); !maybe {
			mask |= bit
		}
	}
	if nc.n.Load() < maxNameCacheEntries {
		if _, loaded := nc.m.LoadOrStore(strings.Clone(name), mask); !loaded {
			nc.n.Add(1)
		}
	}
	return mask
}

// inScopeIgnoringTenant reports whether the viewed labels match the rule's
// selector.
func (r *rule) inScopeIgnoringTenant(v *lview) bool {
	for _, m := range r.matchers {
		if !m.Matches(v.get(m.Name)) {
			return false
		}
	}
	return true
}
