package retro

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/rules"
)

// Actions of a planned series.
const (
	ActionRewrite = "rewrite" // written under new labels, original deleted
	ActionDrop    = "drop"    // a rule drops it: deleted, nothing written
)

// Item is one stored series a job changes.
type Item struct {
	Source  labels.Labels `json:"-"`
	Target  labels.Labels `json:"-"`
	Action  string        `json:"action"`
	Rule    string        `json:"rule,omitempty"`
	Samples int64         `json:"samples"`
	// Merged is set when several sources share Target.
	Merged bool `json:"merged,omitempty"`
	// Aggregation is the aggregation rule an ActionAggregate series is an
	// input of, and Group names its output group (aggregate.go).
	Aggregation string `json:"aggregation,omitempty"`
	Group       string `json:"group,omitempty"`
}

// itemJSON is Item with its label sets as maps, for the job store.
type itemJSON struct {
	Source  map[string]string `json:"source"`
	Target  map[string]string `json:"target,omitempty"`
	Action  string            `json:"action"`
	Rule    string            `json:"rule,omitempty"`
	Samples int64             `json:"samples"`
	Merged  bool              `json:"merged,omitempty"`
	// Aggregation and Group: see Item.
	Aggregation string `json:"aggregation,omitempty"`
	Group       string `json:"group,omitempty"`
}

func (it Item) toJSON() itemJSON {
	j := itemJSON{Source: it.Source.Map(), Action: it.Action, Rule: it.Rule, Samples: it.Samples, Merged: it.Merged, Aggregation: it.Aggregation, Group: it.Group}
	if it.Action != ActionDrop {
		j.Target = it.Target.Map()
	}
	return j
}

func (j itemJSON) item() Item {
	return Item{Source: labels.FromMap(j.Source), Target: labels.FromMap(j.Target), Action: j.Action, Rule: j.Rule, Samples: j.Samples, Merged: j.Merged,
		Aggregation: j.Aggregation, Group: j.Group}
}

// Example is one series before and after, for the dry run report.
type Example struct {
	Action      string            `json:"action"`
	Rule        string            `json:"rule,omitempty"`
	Aggregation string            `json:"aggregation,omitempty"`
	Before      map[string]string `json:"before"`
	After       map[string]string `json:"after,omitempty"`
}

// Merge is a target several stored series would become.
type Merge struct {
	Target  map[string]string   `json:"target"`
	Sources []map[string]string `json:"sources"`
	// Aggregation is the aggregation rule that takes every source, ""
	// when none does (the merge is refused).
	Aggregation string `json:"aggregation,omitempty"`
}

// DryRun is what a job would do; nothing in the backend changes to build it.
type DryRun struct {
	SeriesMatched    int64 `json:"series_matched"`   // stored series the selector matches with samples in the range
	SeriesUnchanged  int64 `json:"series_unchanged"` // no rule changes them
	SeriesAffected   int64 `json:"series_affected"`
	SeriesRenamed    int64 `json:"series_renamed"`    // metric name changes
	SeriesRelabelled int64 `json:"series_relabelled"` // another label changes
	SeriesDropped    int64 `json:"series_dropped"`
	SeriesMerged     int64 `json:"series_merged"` // sources that share a target with another source (or with a stored series no rule changes)
	// SeriesMergeRefused counts the merged sources no aggregation rule
	// takes: an execution refuses them.
	SeriesMergeRefused int64 `json:"series_merge_refused"`
	// SeriesAggregated counts the series an aggregation rule takes (merged
	// or not), folded into AggregationGroups output groups.
	SeriesAggregated  int64     `json:"series_aggregated"`
	AggregationGroups int64     `json:"aggregation_groups"`
	TargetSeries      int64     `json:"target_series"` // series rewritten into (aggregation outputs not included)
	SamplesAffected   int64     `json:"samples_affected"`
	SamplesRewritten  int64     `json:"samples_rewritten"`
	SamplesDropped    int64     `json:"samples_dropped"`
	SamplesAggregated int64     `json:"samples_aggregated"`
	Merges            []Merge   `json:"merges,omitempty"` // at most maxExamples
	Examples          []Example `json:"examples,omitempty"`
	// EstimatedSeconds is the execution time at the job's throttles (0 when
	// none is set).
	EstimatedSeconds float64 `json:"estimated_seconds"`
	// PlanSeconds is how long the dry run took (it reads every sample).
	PlanSeconds float64 `json:"plan_seconds"`
}

const maxExamples = 10

// plan lists the series, runs them through eng and counts their samples.
// progress is called after every batch read.
// agg, when not nil, holds the job's aggregation rules: a series they take
// after the rules becomes an ActionAggregate item.
func plan(ctx context.Context, be Backend, eng *rules.Engine, agg *aggregate.Engine, spec *Spec, batch int, slice time.Duration, lim *limiter, progress func(done, total int)) ([]Item, DryRun, error) {
	began := time.Now()
	var dr DryRun
	listed, err := be.ListSeries(ctx, spec.Selector, spec.startMs(), spec.endMs())
	if err != nil {
		return nil, dr, err
	}
	sort.Slice(listed, func(i, j int) bool { return labels.Compare(listed[i], listed[j]) < 0 })
	var items []Item
	for _, ls := range listed {
		res := eng.Apply(&rules.Series{Tenant: spec.Tenant, Labels: ls}, nil)
		target := ls
		switch res.Action {
		case rules.Dropped:
			items = append(items, Item{Source: ls, Action: ActionDrop, Rule: res.Rule})
			continue
		case rules.Changed:
			target = res.Labels
		}
		if agg != nil {
			if name, group, ok := agg.Takes(spec.Tenant, target); ok {
				items = append(items, Item{Source: ls, Target: target, Action: ActionAggregate, Rule: res.Rule, Aggregation: name, Group: groupID(group)})
				continue
			}
		}
		if !labels.Equal(target, ls) {
			items = append(items, Item{Source: ls, Target: target, Action: ActionRewrite, Rule: res.Rule})
		}
	}
	// Count samples (and leave out series without any in the range), a
	// batch and a time slice at a time, as the execution reads them.
	counts := make(map[string]int64, len(listed))
	for i := 0; i < len(listed); i += batch {
		part := listed[i:min(i+batch, len(listed))]
		if err := lim.series(ctx, len(part)); err != nil {
			return nil, dr, err
		}
		for _, sl := range sliceRange(spec.startMs(), spec.endMs(), slice.Milliseconds()) {
			got, err := be.Read(ctx, part, sl.start, sl.end)
			if err != nil {
				return nil, dr, err
			}
			for _, s := range got {
				counts[s.Labels.String()] += int64(s.count())
				if err := lim.samples(ctx, s.count()); err != nil {
					return nil, dr, err
				}
			}
		}
		if progress != nil {
			progress(min(i+batch, len(listed)), len(listed))
		}
	}
	for _, ls := range listed {
		if counts[ls.String()] > 0 {
			dr.SeriesMatched++
		}
	}
	kept := items[:0]
	for _, it := range items {
		if it.Samples = counts[it.Source.String()]; it.Samples > 0 {
			kept = append(kept, it)
		}
	}
	items = kept
	// A target is a merge when several sources become it, or when a stored
	// series that no rule changes already has its labels.
	stored := map[string]labels.Labels{}
	for _, ls := range listed {
		if counts[ls.String()] > 0 {
			stored[ls.String()] = ls
		}
	}
	for _, it := range items {
		delete(stored, it.Source.String())
	}
	byTarget := map[string][]int{}
	groups := map[string]bool{}
	for i, it := range items {
		if it.Action != ActionDrop {
			k := it.Target.String()
			byTarget[k] = append(byTarget[k], i)
		}
		if it.Action == ActionAggregate && it.Group != "" {
			groups[it.Group] = true
		}
	}
	refusedShown := false
	targets := make([]string, 0, len(byTarget))
	for k := range byTarget {
		targets = append(targets, k)
	}
	sort.Strings(targets)
	for _, k := range targets {
		idx := byTarget[k]
		unchanged, isStored := stored[k]
		if len(idx) < 2 && !isStored {
			continue
		}
		m := Merge{Target: items[idx[0]].Target.Map(), Aggregation: items[idx[0]].Aggregation}
		for _, i := range idx {
			items[i].Merged = true
			m.Sources = append(m.Sources, items[i].Source.Map())
			if items[i].Action != ActionAggregate {
				m.Aggregation = ""
			}
		}
		if isStored {
			m.Sources = append(m.Sources, unchanged.Map())
			m.Aggregation = ""
		}
		if len(dr.Merges) < maxExamples || m.Aggregation == "" && !refusedShown {
			// The refused merge an execution names is always shown.
			if len(dr.Merges) == maxExamples {
				dr.Merges = dr.Merges[:maxExamples-1]
			}
			dr.Merges = append(dr.Merges, m)
			refusedShown = refusedShown || m.Aggregation == ""
		}
	}
	dr.AggregationGroups = int64(len(groups))
	targets = targets[:0]
	for _, it := range items {
		if it.Action == ActionRewrite {
			targets = append(targets, it.Target.String())
		}
	}
	slices.Sort(targets)
	dr.TargetSeries = int64(len(slices.Compact(targets)))
	for _, it := range items {
		dr.SeriesAffected++
		dr.SamplesAffected += it.Samples
		if it.Merged {
			dr.SeriesMerged++
			if it.Action == ActionRewrite {
				dr.SeriesMergeRefused++
			}
		}
		switch it.Action {
		case ActionDrop:
			dr.SeriesDropped++
			dr.SamplesDropped += it.Samples
		case ActionAggregate:
			dr.SeriesAggregated++
			dr.SamplesAggregated += it.Samples
		case ActionRewrite:
			dr.SamplesRewritten += it.Samples
		}
		if it.Action != ActionDrop {
			if it.Source.Get(model.MetricNameLabel) != it.Target.Get(model.MetricNameLabel) {
				dr.SeriesRenamed++
			}
			if !labels.Equal(it.Source.DropReserved(isName), it.Target.DropReserved(isName)) {
				dr.SeriesRelabelled++
			}
		}
		if len(dr.Examples) < maxExamples {
			ex := Example{Action: it.Action, Rule: it.Rule, Aggregation: it.Aggregation, Before: it.Source.Map()}
			if it.Action != ActionDrop {
				ex.After = it.Target.Map()
			}
			dr.Examples = append(dr.Examples, ex)
		}
	}
	sortForBatches(items)
	dr.SeriesUnchanged = dr.SeriesMatched - dr.SeriesAffected
	dr.EstimatedSeconds = spec.Throttles.estimate(dr.SeriesAffected, dr.SamplesAffected)
	dr.PlanSeconds = time.Since(began).Seconds()
	return items, dr, nil
}

// mergeError explains why a plan with merges cannot execute.
func mergeError(dr DryRun) error {
	if dr.SeriesMergeRefused == 0 {
		return nil
	}
	var first Merge
	for _, m := range dr.Merges {
		if m.Aggregation == "" {
			first = m
			break
		}
	}
	return fmt.Errorf("%d stored series would merge into fewer series (first: %v ← %d series) and no aggregation rule takes them; a rewrite cannot merge series whose samples share timestamps: add an aggregation rule (aggregations:, with type:) that takes the merged metric, or narrow the selector", dr.SeriesMergeRefused, first.Target, len(first.Sources))
}

func isName(n string) bool { return n == model.MetricNameLabel }
