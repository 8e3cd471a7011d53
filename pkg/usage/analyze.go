package usage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/promgov/promgov/pkg/usage/grafana"
	"github.com/promgov/promgov/pkg/usage/rules"
)

// Analysis is what a set of dashboards and rule files read, worked out
// offline (promgovctl usage analyze): no traffic, no query log.
type Analysis struct {
	// Files counts the files read; Dashboards and Rules the objects in them.
	Files      int `json:"files"`
	Dashboards int `json:"dashboards"`
	Rules      int `json:"rules"`
	// Expressions counts the PromQL expressions seen, ParseErrors those that
	// did not parse (SampleErrors names up to five).
	Expressions  int      `json:"expressions"`
	ParseErrors  int      `json:"parse_errors"`
	SampleErrors []string `json:"sample_errors,omitempty"`
	// Metrics are every metric named exactly by a reader or recorded by a
	// rule, sorted by name. State is used, or unused with reason
	// only_unused_recording_rules when only recording rules whose outputs
	// nobody reads use it.
	Metrics []AnalyzedMetric `json:"metrics"`
	// Patterns are name matchers that are not plain names ({__name__=~"…"},
	// a variable in the name); with traffic they resolve to metrics.
	Patterns []PatternUse `json:"patterns,omitempty"`
}

// AnalyzedMetric is one metric of an Analysis.
type AnalyzedMetric struct {
	// Name is the metric name.
	Name string `json:"name"`
	// State is used or unused; Reason says why unused.
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// UsedBy lists the readers (recording rules are listed even when dead).
	UsedBy []UsedBy `json:"used_by"`
	// ReadLabels are the label names live readers reference; AllLabels is
	// set when one of them sees every label.
	ReadLabels []string `json:"read_labels"`
	AllLabels  bool     `json:"all_labels"`
}

// PatternUse is one name pattern and who uses it.
type PatternUse struct {
	// Regex is the name regex as written; Negative for != and !~.
	Regex    string `json:"regex"`
	Negative bool   `json:"negative,omitempty"`
	// UsedBy lists the readers.
	UsedBy []UsedBy `json:"used_by"`
}

// AnalyzePaths reads every dashboard and rule file under paths (files or
// folders, walked recursively): .json files are dashboards; .yaml and .yml
// files are dashboards (ConfigMaps, GrafanaDashboard objects) when they hold
// one, and Prometheus rule files or PrometheusRule objects otherwise. It
// returns what they read; unreadable or undecodable files are returned as
// a joined error beside whatever loaded.
func AnalyzePaths(paths []string) (*Analysis, error) {
	a := &Analysis{}
	var consumers []Consumer
	var errs []error
	add := func(res *LoadResult) {
		consumers = append(consumers, res.Consumers...)
		a.Expressions += res.Expressions
		a.ParseErrors += res.ParseErrors
		for _, e := range res.SampleErrors {
			if len(a.SampleErrors) < maxSampleErrors {
				a.SampleErrors = append(a.SampleErrors, e)
			}
		}
	}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(p))
			if p != root && ext != ".json" && ext != ".yaml" && ext != ".yml" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			a.Files++
			ds, err := grafana.LoadDocument(p, data)
			switch {
			case errors.Is(err, grafana.ErrNotDashboard) && ext != ".json":
				rs, err := rules.ParseFile(data)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: neither a dashboard nor a rule file: %w", p, err))
				}
				a.Rules += len(rs)
				add(rulesResult(rs))
			default:
				if err != nil {
					errs = append(errs, err)
				}
				a.Dashboards += len(ds)
				add(dashboardsResult(ds, p))
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	a.Metrics, a.Patterns = analyze(consumers)
	return a, errors.Join(errs...)
}

// analyze classifies every metric the consumers name, as Classify does
// for traffic, and lists the name patterns with their readers.
func analyze(consumers []Consumer) ([]AnalyzedMetric, []PatternUse) {
	names := map[string]struct{}{}
	type patternKey struct {
		regex    string
		negative bool
	}
	patterns := map[patternKey][]UsedBy{}
	for _, c := range consumers {
		for n := range c.Refs.Metrics {
			names[n] = struct{}{}
		}
		if c.Records != "" {
			names[c.Records] = struct{}{}
		}
		for _, p := range c.Refs.Patterns {
			k := patternKey{p.Regex, p.Negative}
			if !slices.Contains(patterns[k], c.UsedBy) {
				patterns[k] = append(patterns[k], c.UsedBy)
			}
		}
	}
	costs := make(StaticCosts, 0, len(names))
	for n := range names {
		costs = append(costs, MetricCost{Name: n})
	}
	rep := Classify(consumers, AccessSnapshot{}, costs, time.Time{})
	metrics := make([]AnalyzedMetric, 0, len(rep.Metrics))
	for _, m := range rep.Metrics {
		metrics = append(metrics, AnalyzedMetric{Name: m.Name, State: m.State, Reason: m.Reason, UsedBy: m.UsedBy,
			ReadLabels: append([]string{}, m.ReadLabels...), AllLabels: m.AllLabels})
	}
	out := make([]PatternUse, 0, len(patterns))
	for k, by := range patterns {
		out = append(out, PatternUse{Regex: k.regex, Negative: k.negative, UsedBy: by})
	}
	slices.SortFunc(out, func(a, b PatternUse) int {
		if c := strings.Compare(a.Regex, b.Regex); c != 0 {
			return c
		}
		return boolCompare(a.Negative, b.Negative)
	})
	return metrics, out
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
