package ui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

// The aggregation page: the cluster's aggregation rows (GET
// /promgov/api/v1/aggregation/metrics, which a distributor merges from
// every ingester's QueryAggregation answer), the aggregation suggestions
// of the usage classification as candidate rules, and a form that runs
// series through the rules test API: the running aggregation rules (GET),
// or candidate ones (POST, which needs what a candidate rules test needs).

// aggRow is one (rule, tenant, input metric) with its reduction.
type aggRow struct {
	aggregate.MetricStats
	Reduction float64 // 1 - outputs/inputs; may be negative (several outputs)
}

// aggRule sums a rule's rows.
type aggRule struct {
	Rule                  string
	Metrics               int
	Inputs, Outputs       int
	Reduction             float64
	InputsAll, OutputsAll int
}

// aggCandidate is an aggregation suggestion as a candidate rule.
type aggCandidate struct {
	usage.Suggestion
	YAML string
}

type aggregationData struct {
	Filter         string
	Rows           []aggRow
	Total          int
	Rules          []aggRule
	Inputs, Output int
	Reduction      float64
	Candidates     []aggCandidate
	Classified     bool

	// The test form.
	Series, Tenant, Type, Candidate string
	Types                           []string
	// Tested: the form ran (Test or TestError is set).
	Tested    bool
	Test      *rules.TestResponseData
	TestError string
	// MayCandidate: the viewer may test candidate rules; WhyNot says why
	// not.
	MayCandidate bool
	WhyNot       string
}

// shownAggregationRows bounds the rows the page lists (a filter narrows
// them).
const shownAggregationRows = 500

func (u *UI) aggregation(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	d := aggregationData{Filter: strings.TrimSpace(r.FormValue("filter")), Series: r.FormValue("series"),
		Tenant: strings.TrimSpace(r.FormValue("tenant")), Type: r.FormValue("type"), Candidate: r.PostFormValue("candidate"), Types: metricTypes}
	if _, given := r.Form["type"]; !given {
		d.Type = "counter" // what aggregation rules usually read
	} else if !slices.Contains(metricTypes, d.Type) {
		d.Type = ""
	}
	_, err := u.permits(r, http.MethodPost, rules.PathTest)
	d.MayCandidate = err == nil
	if err != nil {
		d.WhyNot = err.Error()
	}
	var errs []error
	code := http.StatusOK
	var stats []aggregate.MetricStats
	errs = append(errs, u.api.get(ctx, r, aggregate.PathMetrics, nil, &stats))
	u.aggregationRows(&d, stats)
	if view := u.reports.get(u.d.Usage.Report()); view != nil {
		d.Classified = true
		d.Candidates = aggregationCandidates(view)
	}
	if strings.TrimSpace(d.Series) != "" {
		code = u.aggregationTest(ctx, r, &d)
	}
	u.renderStatus(w, r, code, "aggregation", "Aggregation", errs, d)
}

// aggregationRows fills the rows matching the filter and the per-rule
// sums.
func (u *UI) aggregationRows(d *aggregationData, stats []aggregate.MetricStats) {
	filter := strings.ToLower(d.Filter)
	byRule := map[string]*aggRule{}
	for _, s := range stats {
		ar := byRule[s.Rule]
		if ar == nil {
			ar = &aggRule{Rule: s.Rule}
			byRule[s.Rule] = ar
		}
		ar.Metrics++
		ar.Inputs += s.InputSeries
		ar.Outputs += s.OutputSeries
		d.Inputs += s.InputSeries
		d.Output += s.OutputSeries
		if filter != "" && !strings.Contains(strings.ToLower(s.Metric), filter) && !strings.Contains(strings.ToLower(s.Rule), filter) {
			continue
		}
		d.Total++
		if len(d.Rows) < shownAggregationRows {
			d.Rows = append(d.Rows, aggRow{MetricStats: s, Reduction: reduction(s.InputSeries, s.OutputSeries)})
		}
	}
	for _, ar := range byRule {
		ar.Reduction = reduction(ar.Inputs, ar.Outputs)
		d.Rules = append(d.Rules, *ar)
	}
	slices.SortFunc(d.Rules, func(a, b aggRule) int {
		return cmp.Or(cmp.Compare(b.Inputs, a.Inputs), strings.Compare(a.Rule, b.Rule))
	})
	d.Reduction = reduction(d.Inputs, d.Output)
}

// reduction is the share of series aggregation saves: 1 - out/in.
func reduction(in, out int) float64 {
	if in == 0 {
		return 0
	}
	return 1 - float64(out)/float64(in)
}

// shownCandidates bounds the aggregation suggestions listed.
const shownCandidates = 20

// aggregationCandidates are the classification's aggregation suggestions
// (those saving the most series first) as `aggregations:` YAML.
func aggregationCandidates(view *reportView) []aggCandidate {
	view.sugOnce.Do(func() { view.sug = usage.Suggest(view.rep) })
	var out []aggCandidate
	for _, s := range view.sug {
		if (s.Kind != usage.SuggestAggregation && s.Kind != usage.SuggestLimitAggregation) || len(s.Aggregations) == 0 {
			continue
		}
		c := aggCandidate{Suggestion: s}
		if b, err := yaml.Marshal(map[string]any{"aggregations": s.Aggregations}); err == nil {
			c.YAML = truncate(string(b), previewChars)
		}
		out = append(out, c)
		if len(out) == shownCandidates {
			break
		}
	}
	return out
}

// metricTypes are the types the test form offers ("": unknown, as a
// Remote Write 1.0 series without metadata).
var metricTypes = []string{"counter", "gauge", "histogram", "summary", ""}

// maxTestLines bounds the series of the page's test form.
const maxTestLines = 100

// aggregationTest runs the form's series (one per line) through the rules
// test API: the running rules, or with a candidate the active rules plus
// the candidate's `aggregations:` (POST only; it needs the permission a
// candidate rules test needs). It answers the page's status.
func (u *UI) aggregationTest(ctx context.Context, r *http.Request, d *aggregationData) int {
	d.Tested = true
	req := rules.TestRequest{Tenant: d.Tenant}
	for _, l := range strings.Split(d.Series, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			req.Series = append(req.Series, rules.TestSeries{Series: l, Type: d.Type})
		}
	}
	if len(req.Series) > maxTestLines {
		d.TestError = fmt.Sprintf("%d series: give at most %d", len(req.Series), maxTestLines)
		return http.StatusBadRequest
	}
	if strings.TrimSpace(d.Candidate) != "" {
		if r.Method != http.MethodPost {
			d.TestError = "candidate rules are tested with the form's POST"
			return http.StatusMethodNotAllowed
		}
		if _, err := u.permits(r, http.MethodPost, rules.PathTest); err != nil {
			d.TestError = "candidate not tested: " + err.Error()
			return http.StatusForbidden
		}
		cand, err := u.withActiveRules(ctx, r, d.Candidate)
		if err != nil {
			d.TestError = err.Error()
			return http.StatusBadRequest
		}
		req.Rules = cand
	}
	var res rules.TestResponseData
	if err := u.api.post(ctx, r, rules.PathTest, req, &res); err != nil {
		d.TestError = err.Error()
		var ae *apiError
		if errors.As(err, &ae) {
			return ae.Status
		}
		return http.StatusBadGateway
	}
	d.Test = &res
	return http.StatusOK
}

// withActiveRules is candidate (YAML with `aggregations:`) with the active
// `rules:` added when it has none of its own, so the test runs the series
// through the rules that run before aggregation.
func (u *UI) withActiveRules(ctx context.Context, r *http.Request, candidate string) (string, error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(candidate), &doc); err != nil {
		return "", fmt.Errorf("candidate: not YAML: %w", err)
	}
	if _, ok := doc["aggregations"]; !ok {
		return "", errors.New("candidate: give an `aggregations:` list (docs/aggregation.md)")
	}
	if _, ok := doc["rules"]; ok {
		return candidate, nil
	}
	var active rules.RulesData
	if err := u.api.get(ctx, r, rules.PathRules, nil, &active); err != nil {
		return "", err
	}
	var rs map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(active.YAML), &rs); err != nil {
		return "", fmt.Errorf("the active rules: %w", err)
	}
	for k, v := range rs {
		if _, ok := doc[k]; !ok {
			doc[k] = v
		}
	}
	b, err := yaml.Marshal(doc)
	return string(b), err
}
