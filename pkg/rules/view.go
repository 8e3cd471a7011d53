package rules

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// lview is a decoded copy of a label set (name/value pairs in name order),
// built once per series and once after each change, so that the many
// lookups of the rules' pre-checks do not decode the packed labels.Labels
// again and again. The strings alias the labels' memory. Reused across
// series (pooled in scratch): after warm-up, reset does not allocate.
type lview struct {
	ls []labels.Label
}

// reset makes v a view of ls.
func (v *lview) reset(ls labels.Labels) {
	v.ls = v.ls[:0]
	ls.Range(func(l labels.Label) { v.ls = append(v.ls, l) })
}

// get returns the value of name, or "".
func (v *lview) get(name string) string {
	for i := range v.ls {
		if v.ls[i].Name == name {
			return v.ls[i].Value
		}
	}
	return ""
}

// has reports whether name is present.
func (v *lview) has(name string) bool {
	for i := range v.ls {
		if v.ls[i].Name == name {
			return true
		}
	}
	return false
}

// okView is labelsRule.ok on a view.
func (r *labelsRule) okView(v *lview) bool {
	for _, n := range r.required {
		if !v.has(n) {
			return false
		}
	}
	for _, n := range r.forbidden {
		if v.has(n) {
			return false
		}
	}
	if r.allowed != nil {
		for _, l := range v.ls {
			if _, ok := r.allowed[l.Name]; !ok {
				return false
			}
		}
	}
	for _, n := range r.normalize {
		for _, name := range n.labels {
			if val := v.get(name); val != "" && n.changes(val) {
				return false
			}
		}
	}
	return true
}

// okView reports whether the viewed labels are within every limit (the
// allocation-free pre-check of limitsRule.check).
func (r *limitsRule) okView(v *lview) bool {
	if r.maxLabels > 0 && len(v.ls) > r.maxLabels {
		return false
	}
	if r.maxName == 0 && r.maxValue == 0 {
		return true
	}
	for _, l := range v.ls {
		if r.maxName > 0 && len(l.Name) > r.maxName {
			return false
		}
		if r.maxValue > 0 && len(l.Value) > r.maxValue && l.Name != model.MetricNameLabel {
			return false
		}
	}
	return true
}
