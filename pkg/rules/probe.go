package rules

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// kindID is a rule kind as a small integer, for cheap dispatch.
type kindID uint8

const (
	kindRelabel kindID = iota
	kindNaming
	kindLabels
	kindLimits
	kindPlugin
	// kindOther is every other kind: no allocation-free pre-check, the
	// stage always runs.
	kindOther
)

// probe is the hot-path pre-check of a rule on a series in its scope: it
// reports false only when the rule certainly leaves the series alone (then
// eval would return no hit), and whether type checks were skipped for lack
// of a type. It does not allocate and returns only two booleans, so the
// common case (no rule touches the series) never builds a verdict. A true
// answer means "maybe": eval decides.
//
// It reads the series through sc.view, which must view it.
func (r *rule) probe(md *Metadata, sc *scratch) (maybe, typeUnknown bool) {
	v := &sc.view
	switch r.kid {
	case kindRelabel:
		return !r.relabelNoop(sc), false
	case kindNaming:
		name := v.get(model.MetricNameLabel)
		if name == "" {
			return false, false
		}
		typeUnknown = r.naming.typeSuffixes && !md.TypeKnown()
		return !r.naming.ok(name, r.naming.needsLe && v.has(labels.BucketLabel), md), typeUnknown
	case kindLabels:
		return !r.labels.okView(v), false
	case kindLimits:
		return !r.limits.okView(v), false
	default:
		return true, false // only the stage knows
	}
}

// relabelNoop reports whether every relabel config of the rule provably
// leaves the viewed labels unchanged (see relabelStep.noop). When a config might change
// the labels, the later configs cannot be judged on ls, so the answer is
// false and eval runs them through relabel.ProcessBuilder.
func (r *rule) relabelNoop(sc *scratch) bool {
	sc.isSet = false
	for i := range r.relabel {
		if !r.relabel[i].noop(sc) {
			return false
		}
	}
	return true
}
