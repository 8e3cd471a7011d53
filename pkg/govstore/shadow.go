package govstore

import (
	"bytes"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/rules/ruleconfig"
	"github.com/promgov/promgov/pkg/usage"
)

// ShadowRun says what of a shadow candidate runs beside the active version
// (GET /promgov/api/v1/status/config).
type ShadowRun struct {
	// Version is the candidate.
	Version uint64 `json:"version"`
	// Rules are the names the candidate's new and changed rules run under,
	// in shadow mode (their promgov_rules_* series carry mode="shadow").
	Rules []string `json:"rules"`
	// Aggregations are the names the candidate's new and changed
	// aggregation rules run under, in shadow mode.
	Aggregations []string `json:"aggregations,omitempty"`
	// Limits is set when the candidate's cardinality limits run in shadow.
	Limits bool `json:"limits"`
	// DropUnused is set when the candidate's drop policy runs in shadow.
	DropUnused bool `json:"drop_unused"`
	// NotShadowed is what of the candidate cannot run beside the active
	// version, and why: its effect shows only once promoted (preview it).
	NotShadowed []string `json:"not_shadowed,omitempty"`
}

// ShadowRuleName is the name a candidate's rule runs under in shadow.
func ShadowRuleName(name string, version uint64) string {
	return name + "@v" + strconv.FormatUint(version, 10)
}

// WithShadow returns the document a node runs while candidate (version n,
// mode shadow) is staged over active: active unchanged, plus every rule the
// candidate adds or changes as a shadow copy named ShadowRuleName, placed
// right after the active rule that precedes it in the candidate (first when
// none does): a changed rule's copy runs just before its active self, so
// both see the same series, as they would at its place in the candidate.
// A shadow rule counts what it would do and changes nothing, so
// enforcement stays exactly the active version's.
//
// Limits and the drop policy cannot run twice: the candidate's run in
// shadow only where the active version enforces none of them (every
// limit unlimited or in shadow; the drop policy off or in shadow).
// Otherwise, and for removed rules, ShadowRun.NotShadowed says so.
func WithShadow(active, candidate Document, n uint64) (Document, ShadowRun) {
	run := ShadowRun{Version: n, Rules: []string{}}
	out := active
	out.Rules = append([]ruleconfig.RuleConfig(nil), active.Rules...)

	activeIdx := make(map[string]int, len(active.Rules))
	for i, r := range active.Rules {
		activeIdx[r.Name] = i
	}
	candNames := make(map[string]bool, len(candidate.Rules))
	// insertAfter[i] holds the shadow rules that go after active rule i
	// (-1: before every active rule).
	insertAfter := map[int][]ruleconfig.RuleConfig{}
	prev := -1
	for _, r := range candidate.Rules {
		candNames[r.Name] = true
		if i, ok := activeIdx[r.Name]; ok {
			if sameYAML(r, active.Rules[i]) {
				prev = i
				continue
			}
		}
		s := r
		s.Name = ShadowRuleName(r.Name, n)
		s.Mode = ruleconfig.ModeShadow
		insertAfter[prev] = append(insertAfter[prev], s)
		run.Rules = append(run.Rules, s.Name)
		if i, ok := activeIdx[r.Name]; ok {
			prev = i
		}
	}
	if len(run.Rules) > 0 {
		merged := make([]ruleconfig.RuleConfig, 0, len(out.Rules)+len(run.Rules))
		merged = append(merged, insertAfter[-1]...)
		for i, r := range out.Rules {
			merged = append(merged, r)
			merged = append(merged, insertAfter[i]...)
		}
		out.Rules = merged
	}
	for _, r := range active.Rules {
		if !candNames[r.Name] {
			run.NotShadowed = append(run.NotShadowed, fmt.Sprintf("rules: %q is removed by the candidate; it keeps running until the candidate is promoted", r.Name))
		}
	}

	out.Aggregations, run.Aggregations, run.NotShadowed = shadowAggregations(active.Aggregations, candidate.Aggregations, n, run.NotShadowed)

	if !sameYAML(active.Cardinality.Limits, candidate.Cardinality.Limits) {
		if enforcesLimits(active.Cardinality.Limits) {
			run.NotShadowed = append(run.NotShadowed, "cardinality.limits: the active version enforces limits, and a limit cannot run in shadow beside an enforced one; preview the candidate instead")
		} else {
			out.Cardinality.Limits = shadowLimits(candidate.Cardinality.Limits)
			run.Limits = true
		}
	}
	if !sameYAML(active.Usage.DropUnused, candidate.Usage.DropUnused) {
		if active.Usage.DropUnused.Mode == usage.ModeEnforce {
			run.NotShadowed = append(run.NotShadowed, "usage.drop_unused: the active version enforces its drop policy; the candidate's cannot run beside it")
		} else if candidate.Usage.DropUnused.Mode != usage.ModeOff {
			out.Usage.DropUnused = candidate.Usage.DropUnused
			out.Usage.DropUnused.Mode = usage.ModeShadow
			run.DropUnused = true
		}
	}
	return out, run
}

// shadowAggregations is the active aggregation rules plus a shadow copy
// (ShadowRuleName, mode shadow: it counts what it would aggregate and
// writes nothing) of each rule the candidate adds or changes. Aggregation
// rules do not see each other's outputs, so the copies go last. A
// candidate without the key changes nothing.
func shadowAggregations(active, candidate *[]aggregate.RuleConfig, n uint64, notShadowed []string) (*[]aggregate.RuleConfig, []string, []string) {
	if candidate == nil || sameYAML(active, candidate) {
		return active, nil, notShadowed
	}
	if active == nil {
		return nil, nil, append(notShadowed, "aggregations: the active version leaves them to each ingester's file, so the candidate's cannot run beside them; preview and promote it")
	}
	act := *active
	byName := make(map[string]aggregate.RuleConfig, len(act))
	for _, r := range act {
		byName[r.Name] = r
	}
	merged := append([]aggregate.RuleConfig(nil), act...)
	var names []string
	kept := map[string]bool{}
	for _, r := range *candidate {
		kept[r.Name] = true
		if a, ok := byName[r.Name]; ok && sameYAML(a, r) {
			continue
		}
		s := r
		s.Name = ShadowRuleName(r.Name, n)
		s.Mode = aggregate.ModeShadow
		merged = append(merged, s)
		names = append(names, s.Name)
	}
	for _, r := range act {
		if !kept[r.Name] {
			notShadowed = append(notShadowed, fmt.Sprintf("aggregations: %q is removed by the candidate; it keeps aggregating until the candidate is promoted", r.Name))
		}
	}
	if len(names) == 0 {
		return active, nil, notShadowed
	}
	return &merged, names, notShadowed
}

// sameYAML compares two configuration values by their YAML form (their
// compiled parts, such as relabel regexes, compare by source).
func sameYAML(a, b any) bool {
	x, errA := yaml.Marshal(a)
	y, errB := yaml.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// enforcesLimits reports whether l may refuse a series: some limit is set
// without an explicit shadow mode (an empty mode in an override inherits,
// and is counted as enforcing: the conservative answer).
func enforcesLimits(l cardinality.LimitsConfig) bool {
	d := l.Defaults
	if d.MaxSeriesPerMetric > 0 && d.MaxSeriesPerMetricMode != cardinality.ModeShadow ||
		d.MaxValuesPerLabel > 0 && d.MaxValuesPerLabelMode != cardinality.ModeShadow ||
		d.MaxSeriesPerTenant > 0 && d.MaxSeriesPerTenantMode != cardinality.ModeShadow {
		return true
	}
	for _, o := range l.Tenants {
		if overrideEnforces(o) {
			return true
		}
	}
	for _, o := range l.Metrics {
		if overrideEnforces(o.LimitOverrides) {
			return true
		}
	}
	return false
}

func overrideEnforces(o cardinality.LimitOverrides) bool {
	set := func(p *int64, m cardinality.Mode) bool { return p != nil && *p > 0 && m != cardinality.ModeShadow }
	return set(o.MaxSeriesPerMetric, o.MaxSeriesPerMetricMode) ||
		set(o.MaxValuesPerLabel, o.MaxValuesPerLabelMode) ||
		set(o.MaxSeriesPerTenant, o.MaxSeriesPerTenantMode)
}

// shadowLimits is l with every limit in shadow mode.
func shadowLimits(l cardinality.LimitsConfig) cardinality.LimitsConfig {
	s := cardinality.ModeShadow
	l.Defaults.MaxSeriesPerMetricMode, l.Defaults.MaxValuesPerLabelMode, l.Defaults.MaxSeriesPerTenantMode = s, s, s
	tenants := make(map[string]cardinality.LimitOverrides, len(l.Tenants))
	for t, o := range l.Tenants {
		o.MaxSeriesPerMetricMode, o.MaxValuesPerLabelMode, o.MaxSeriesPerTenantMode = s, s, s
		tenants[t] = o
	}
	l.Tenants = tenants
	metrics := make([]cardinality.MetricOverride, len(l.Metrics))
	for i, o := range l.Metrics {
		// max_series_per_tenant is not allowed in a metric override.
		o.MaxSeriesPerMetricMode, o.MaxValuesPerLabelMode = s, s
		metrics[i] = o
	}
	l.Metrics = metrics
	return l
}
