package ui

import (
	"cmp"
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// pageTimeout bounds the API calls of one page.
const pageTimeout = 10 * time.Second

type overviewData struct {
	Ring        ring.StatusData
	Self        NodeStatus
	Nodes       []NodeStatus
	Refused     []kv
	Tenants     []cardinality.TenantCardinality
	Ingest      LineChart
	Ruleset     *rules.RulesData
	Top         []cardinality.MetricCardinality
	HistorySpan string
	// Cluster is false for a tenant-scoped caller: the cluster-wide parts
	// are left out.
	Cluster bool
}

type kv struct {
	Key   string
	Value float64
}

func sortedKV(m map[string]float64) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, kv{k, v})
		}
	}
	slices.SortFunc(out, func(a, b kv) int { return cmp.Or(cmp.Compare(b.Value, a.Value), strings.Compare(a.Key, b.Key)) })
	return out
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var d overviewData
	var errs []error
	_, d.Cluster = u.scope(r)
	if d.Cluster {
		u.overviewCluster(ctx, r, &d, &errs)
	}
	tenant, err := u.tenant(r)
	errs = append(errs, err)
	d.Tenants, err = u.d.Cardinality.Tenants(ctx, cardinality.Query{Tenant: tenant, Limit: 10})
	errs = append(errs, err)
	d.Top, err = u.d.Cardinality.Metrics(ctx, cardinality.Query{Tenant: tenant, Limit: 5})
	errs = append(errs, err)
	u.render(w, r, "overview", "Overview", errs, d)
}

// overviewCluster fills the overview's cluster-wide parts: the ring, the
// nodes, every tenant's refusals and traffic, the ruleset.
func (u *UI) overviewCluster(ctx context.Context, r *http.Request, d *overviewData, errp *[]error) {
	errs := *errp
	defer func() { *errp = errs }()
	var env ring.Status
	errs = append(errs, u.api.get(ctx, r, ring.PathStatus, nil, &env.Data))
	d.Ring = env.Data
	self, err := ReadNodeStatus(u.d.Gatherer, u.d.Node, u.d.Role)
	errs = append(errs, err)
	d.Self = self
	refused := map[string]float64{}
	for k, v := range self.Refused {
		refused[k] += v
	}
	if u.d.Nodes != nil {
		d.Nodes = u.d.Nodes.Nodes(ctx)
		for _, n := range d.Nodes {
			for k, v := range n.Refused {
				refused[k] += v
			}
		}
	} else {
		d.Nodes = []NodeStatus{self}
	}
	d.Refused = sortedKV(refused)
	if u.d.Role == RoleDistributor {
		d.Ruleset = &rules.RulesData{}
		errs = append(errs, u.api.get(ctx, r, rules.PathRules, nil, d.Ruleset))
	}
	if u.d.History != nil {
		s := u.d.History.Ingest()
		d.Ingest = newLineChart("Samples received per second", s.Times, map[string][]float64{"samples/s": s.Rate}, []string{"samples/s"})
		d.HistorySpan = u.d.History.Span().String()
	}
}

type offendersData struct {
	Rows    []offenderRow
	Tenants []cardinality.TenantCardinality
	Tenant  string
	Sort    string
	Filter  string
	Limit   int
	Total   int
	Sorts   []kv
}

type offenderRow struct {
	cardinality.MetricCardinality
	Rank  int
	Trend string // sparkline polyline points; "" without history
}

// offenderSorts are the server-side orders the cardinality API knows.
var offenderSorts = []string{cardinality.SortSeries, cardinality.SortSamplesRate, cardinality.SortRefused, "bytes_rate"}

func (u *UI) offenders(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	q := r.URL.Query()
	d := offendersData{Tenant: q.Get("tenant"), Sort: q.Get("sort"), Filter: strings.TrimSpace(q.Get("filter")), Limit: 100}
	if !slices.Contains(offenderSorts, d.Sort) {
		d.Sort = cardinality.SortSeries
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 10000 {
		d.Limit = n
	}
	var errs []error
	tenant, err := u.tenant(r)
	if err != nil {
		u.render(w, r, "offenders", "Top offenders", []error{err}, d)
		return
	}
	d.Tenant = tenant
	d.Tenants, err = u.d.Cardinality.Tenants(ctx, cardinality.Query{Limit: -1})
	errs = append(errs, err)
	if mine, all := u.scope(r); !all {
		d.Tenants = slices.DeleteFunc(d.Tenants, func(t cardinality.TenantCardinality) bool { return !slices.Contains(mine, t.Tenant) })
	}
	cq := cardinality.Query{Tenant: d.Tenant, Sort: d.Sort, Limit: d.Limit}
	if d.Sort == "bytes_rate" || d.Filter != "" {
		// Ordering by bytes/s and filtering by name need every row; the
		// cut is made here.
		cq.Limit = -1
	}
	if d.Sort == "bytes_rate" {
		cq.Sort = cardinality.SortSeries
	}
	rows, err := u.d.Cardinality.Metrics(ctx, cq)
	errs = append(errs, err)
	if d.Sort == "bytes_rate" {
		slices.SortStableFunc(rows, func(a, b cardinality.MetricCardinality) int { return cmp.Compare(b.BytesRate, a.BytesRate) })
	}
	for _, m := range rows {
		if d.Filter != "" && !strings.Contains(strings.ToLower(m.Name), strings.ToLower(d.Filter)) {
			continue
		}
		d.Total++
		if len(d.Rows) >= d.Limit {
			continue
		}
		row := offenderRow{MetricCardinality: m, Rank: len(d.Rows) + 1}
		if u.d.History != nil {
			if s, ok := u.d.History.Metric(m.Tenant, m.Name); ok {
				row.Trend = sparkline(s.Series)
			}
		}
		d.Rows = append(d.Rows, row)
	}
	u.render(w, r, "offenders", "Top offenders", errs, d)
}

// sparkline is the points of a 100x20 polyline of vs.
func sparkline(vs []float64) string {
	maxV := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV == 0 || len(vs) < 2 {
		return ""
	}
	var b strings.Builder
	for i, v := range vs {
		if math.IsNaN(v) {
			continue
		}
		x := float64(i) / float64(len(vs)-1) * 100
		y := 19 - v/maxV*18
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}

type metricData struct {
	Name    string
	Tenant  string
	Rows    []cardinality.MetricCardinality
	Total   cardinality.MetricCardinality
	Labels  BarChart
	History LineChart
	Usage   *usage.MetricReport
	Rules   []ruleRow
	Applied *rules.TestResult
	// Trace is the "why was this series dropped" answer.
	TraceInput  string
	TraceTenant string
	Trace       *rules.TestResult
	TraceError  string
	IsDist      bool
}

type ruleRow struct {
	rules.RuleSummary
	Counters []kv
}

func (u *UI) metric(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	q := r.URL.Query()
	d := metricData{Name: q.Get("name"), Tenant: q.Get("tenant"), TraceInput: q.Get("series"), TraceTenant: q.Get("trace_tenant"), IsDist: u.d.Role == RoleDistributor}
	if d.Name == "" {
		u.render(w, r, "metric", "Metric", []error{errors.New("name: give a metric name (?name=...); pick one on the Top offenders page")}, d)
		return
	}
	var errs []error
	tenant, err := u.tenant(r)
	errs = append(errs, err)
	d.Tenant = tenant
	d.Rows, err = u.d.Cardinality.Metric(ctx, d.Name, cardinality.Query{Tenant: d.Tenant})
	errs = append(errs, err)
	d.Total, d.Labels = metricLabels(d.Rows)
	if u.d.History != nil {
		if s, ok := u.d.History.Metric(d.Tenant, d.Name); ok {
			d.History = newLineChart("Series and samples/s", s.Times, map[string][]float64{"series": s.Series, "samples/s": s.Rate}, []string{"series", "samples/s"})
		} else {
			d.History = LineChart{Title: "Series and samples/s", Empty: true}
		}
	}
	// The usage classification, the rules and their traces are the
	// cluster's: not for a tenant-scoped caller.
	_, all := u.scope(r)
	d.IsDist = d.IsDist && all
	if u.d.Usage != nil && all {
		if rep := u.d.Usage.Report(); rep != nil {
			if i, ok := slices.BinarySearchFunc(rep.Metrics, d.Name, func(m usage.MetricReport, n string) int { return strings.Compare(m.Name, n) }); ok {
				m := rep.Metrics[i]
				d.Usage = &m
			}
		}
	}
	if d.IsDist {
		var data rules.RulesData
		errs = append(errs, u.api.get(ctx, r, rules.PathRules, nil, &data))
		d.Rules = u.ruleRows(data)
		// What the active rules do to the bare metric name.
		if res, err := u.trace(ctx, r, data.YAML, d.Tenant, d.Name); err == nil {
			d.Applied = res
		}
		if d.TraceInput != "" {
			res, err := u.trace(ctx, r, data.YAML, d.TraceTenant, d.TraceInput)
			if err != nil {
				d.TraceError = err.Error()
			}
			d.Trace = res
		} else {
			d.TraceInput = d.Name + `{}`
			d.TraceTenant = d.Tenant
		}
	}
	u.render(w, r, "metric", d.Name, errs, d)
}

// metricLabels sums a metric's rows over tenants and charts its labels'
// distinct values and the series dropping each would save.
func metricLabels(rows []cardinality.MetricCardinality) (cardinality.MetricCardinality, BarChart) {
	var total cardinality.MetricCardinality
	type agg struct{ values, without uint64 }
	labels := map[string]*agg{}
	for _, m := range rows {
		total.Name = m.Name
		total.Series += m.Series
		total.SamplesRate += m.SamplesRate
		total.BytesRate += m.BytesRate
		total.RefusedSeries += m.RefusedSeries
		total.Limit = max(total.Limit, m.Limit)
		for _, l := range m.Labels {
			a := labels[l.Name]
			if a == nil {
				a = &agg{}
				labels[l.Name] = a
			}
			a.values += l.Values
			a.without += l.SeriesWithout
		}
	}
	var bars []Bar
	for name, a := range labels {
		saved := 0.0
		if a.without > 0 && total.Series > a.without {
			saved = float64(total.Series - a.without)
		}
		bars = append(bars, Bar{Label: name, Value: float64(a.values), Value2: saved,
			Text: human(float64(a.values)) + " values", Text2: human(saved) + " series saved"})
	}
	sort.Slice(bars, func(i, j int) bool {
		if bars[i].Value != bars[j].Value {
			return bars[i].Value > bars[j].Value
		}
		return bars[i].Label < bars[j].Label
	})
	if len(bars) > 30 {
		bars = bars[:30]
	}
	return total, newBarChart("Distinct values per label", "distinct values", "series saved if dropped or aggregated away", bars)
}

// trace runs one series (PromQL notation) through the active rules, given
// as their YAML (GET rules): the test API counts what it traces through
// the active ruleset into promgov_rule_series_total, so a page view would
// count as traffic; a candidate ruleset counts nothing.
func (u *UI) trace(ctx context.Context, r *http.Request, activeYAML, tenant, series string) (*rules.TestResult, error) {
	var data rules.TestResponseData
	err := u.api.post(ctx, r, rules.PathTest, rules.TestRequest{Tenant: tenant, Series: []rules.TestSeries{{Series: series}}, Rules: activeYAML}, &data)
	if err != nil {
		return nil, err
	}
	if len(data.Results) != 1 {
		return nil, errors.New("the rules test API answered no result")
	}
	return &data.Results[0], nil
}

// ruleRows joins the active rules with their counters.
func (u *UI) ruleRows(data rules.RulesData) []ruleRow {
	counters := RuleCounters(u.d.Gatherer)
	out := make([]ruleRow, 0, len(data.Rules))
	for _, rs := range data.Rules {
		out = append(out, ruleRow{RuleSummary: rs, Counters: sortedKV(counters[rs.Name])})
	}
	return out
}

type usageData struct {
	State   string
	Filter  string
	Metrics []usage.MetricReport
	Total   int
	Sources []usage.SourceStatus
	Chart   Scatter
	Counts  map[string]int
	Cost    map[string]float64
	Ready   bool
	Policy  usage.PolicyStatus
}

func (u *UI) usage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := usageData{State: q.Get("state"), Filter: strings.TrimSpace(q.Get("filter")), Counts: map[string]int{}, Cost: map[string]float64{}}
	switch usage.State(d.State) {
	case "", usage.StateUsed, usage.StatePartiallyUsed, usage.StateUnused:
	default:
		d.State = ""
	}
	var errs []error
	d.Sources = u.d.Usage.Sources()
	d.Policy = u.d.Usage.Policy().Status()
	var all []usage.MetricReport
	if rep := u.d.Usage.Report(); rep != nil {
		all = rep.Filter("", "series")
		d.Ready = true
	} else {
		errs = append(errs, errors.New("usage not classified yet: the first classification runs after the sources load"))
	}
	var dots []Dot
	var xs, ys []float64
	for _, m := range all {
		d.Counts[string(m.State)]++
		d.Cost[string(m.State)] += float64(m.Series)
		if (d.State != "" && string(m.State) != d.State) || (d.Filter != "" && !strings.Contains(strings.ToLower(m.Name), strings.ToLower(d.Filter))) {
			continue
		}
		d.Total++
		if len(d.Metrics) < 500 {
			d.Metrics = append(d.Metrics, m)
		}
		if len(dots) < 300 {
			readers := float64(len(m.UsedBy)) + float64(m.Users)
			dots = append(dots, Dot{Label: m.Name, Class: string(m.State), Href: PathMetric + "?" + url.Values{"name": {m.Name}}.Encode(),
				Tip: m.Name + ": " + human(float64(m.Series)) + " series, " + human(readers) + " readers (" + string(m.State) + ")"})
			xs, ys = append(xs, float64(m.Series)), append(ys, readers)
		}
	}
	d.Chart = newScatter("Cost (series, log scale) × readers (dashboards, rules and distinct querying users)", dots, xs, ys)
	u.render(w, r, "usage", "Usage", errs, d)
}

type rulesData struct {
	Ruleset rules.RulesData
	Rules   []ruleRow
	Suggest []usage.Suggestion
}

func (u *UI) rules(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var d rulesData
	var errs []error
	errs = append(errs, u.api.get(ctx, r, rules.PathRules, nil, &d.Ruleset))
	d.Rules = u.ruleRows(d.Ruleset)
	d.Suggest = u.suggestions(20)
	u.render(w, r, "rules", "Rules and configuration", errs, d)
}

// scope is which tenants the caller may see (all: every one, and the
// cluster's totals).
func (u *UI) scope(r *http.Request) (tenants []string, all bool) {
	if u.d.Scope == nil {
		return nil, true
	}
	return u.d.Scope(r)
}

// tenant is the tenant a page asks about: its tenant parameter, else the
// tenant header (web.RequestTenant, as the APIs read it).
func (u *UI) tenant(r *http.Request) (string, error) {
	return web.RequestTenant(r, u.d.TenantHeader)
}

// suggestions returns the first n suggestions of the current usage
// classification, computed once per classification (usage.Suggest reads
// every metric).
func (u *UI) suggestions(n int) []usage.Suggestion {
	rep := u.d.Usage.Report()
	if rep == nil {
		return nil
	}
	u.sugMu.Lock()
	defer u.sugMu.Unlock()
	if u.sugFor != rep {
		u.sugFor, u.sug = rep, usage.Suggest(rep)
	}
	return u.sug[:min(n, len(u.sug))]
}
