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
	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// pageTimeout bounds the API calls of one page.
const pageTimeout = 10 * time.Second

type overviewData struct {
	Ring    ring.StatusData
	Self    NodeStatus
	Nodes   []NodeStatus
	Refused []refusedRow
	Tenants []cardinality.TenantCardinality
	Ingest  LineChart
	// IngestNow is the last sampled ingest rate (samples/s); NaN before two
	// samples.
	IngestNow      float64
	RefusedChart   LineChart
	RefusedRateNow float64
	Ruleset        *activeRules
	// Config is the governance store's rollout (nil without a store).
	Config      *rolloutStatus
	Top         []cardinality.MetricCardinality
	HistorySpan string
	// Cluster is false for a tenant-scoped caller: the cluster-wide parts
	// are left out.
	Cluster bool
}

// refusedRow is one refusal reason: its total since start over every node
// and its rate at the last history sample (NaN when unknown).
type refusedRow struct {
	Reason string
	Total  float64
	Rate   float64
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
	d.IngestNow, d.RefusedRateNow = math.NaN(), math.NaN()
	_, d.Cluster = u.scope(r)
	if d.Cluster {
		u.overviewCluster(ctx, r, &d, &errs)
	}
	tenant, err := u.tenant(r)
	errs = append(errs, err)
	d.Tenants, err = u.snap.Tenants(ctx, cardinality.Query{Tenant: tenant, Limit: 10})
	errs = append(errs, err)
	d.Top, err = u.snap.Metrics(ctx, cardinality.Query{Tenant: tenant, Limit: 5})
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
	var rates map[string][]float64
	if u.d.History != nil {
		var times []time.Time
		times, rates = u.d.History.Refused()
		d.RefusedChart = refusedChart(times, rates)
		s := u.d.History.Ingest()
		d.Ingest = newLineChart("Samples received per second", s.Times, map[string][]float64{"samples/s": s.Rate}, []string{"samples/s"})
		d.IngestNow = lastValue(s.Rate)
		d.HistorySpan = u.d.History.Span().String()
	}
	for _, e := range sortedKV(refused) {
		row := refusedRow{Reason: e.Key, Total: e.Value, Rate: lastValue(rates[e.Key])}
		d.RefusedRateNow = addNaN(d.RefusedRateNow, row.Rate)
		d.Refused = append(d.Refused, row)
	}
	if u.d.Role == RoleDistributor {
		d.Ruleset = &activeRules{}
		errs = append(errs, u.api.get(ctx, r, pathRules, nil, d.Ruleset))
	}
	if u.d.Governance {
		d.Config = &rolloutStatus{}
		errs = append(errs, u.api.get(ctx, r, govapi.PathStatus, nil, d.Config))
	}
}

// lastValue is the last point of vs that is not NaN; NaN when none.
func lastValue(vs []float64) float64 {
	for i := len(vs) - 1; i >= 0; i-- {
		if !math.IsNaN(vs[i]) {
			return vs[i]
		}
	}
	return math.NaN()
}

// refusedChart charts the refused/dropped rate of the five reasons with
// the most over the history.
func refusedChart(times []time.Time, rates map[string][]float64) LineChart {
	type total struct {
		reason string
		sum    float64
	}
	var tot []total
	for reason, vs := range rates {
		sum := 0.0
		for _, v := range vs {
			if !math.IsNaN(v) {
				sum += v
			}
		}
		if sum > 0 {
			tot = append(tot, total{reason, sum})
		}
	}
	slices.SortFunc(tot, func(a, b total) int { return cmp.Or(cmp.Compare(b.sum, a.sum), strings.Compare(a.reason, b.reason)) })
	lines := map[string][]float64{}
	var order []string
	for _, t := range tot[:min(5, len(tot))] {
		lines[t.reason] = rates[t.reason]
		order = append(order, t.reason)
	}
	if len(order) == 0 {
		c := LineChart{Title: "Refused and dropped per second, by reason", Empty: true}
		if len(times) >= 2 {
			c.EmptyNote = "Nothing refused or dropped over the history."
		}
		return c
	}
	return newLineChart("Refused and dropped per second, by reason (the five biggest)", times, lines, order)
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

// offenderSorts are the orders of the snapshot.
var offenderSorts = []string{cardinality.SortSeries, cardinality.SortSamplesRate, cardinality.SortRefused, SortBytesRate}

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
	d.Tenants, err = u.snap.Tenants(ctx, cardinality.Query{Limit: -1})
	errs = append(errs, err)
	if mine, all := u.scope(r); !all {
		d.Tenants = slices.DeleteFunc(d.Tenants, func(t cardinality.TenantCardinality) bool { return !slices.Contains(mine, t.Tenant) })
	}
	rows, total, err := u.snap.Ranked(ctx, d.Tenant, d.Sort, d.Filter, d.Limit)
	errs = append(errs, err)
	d.Total = total
	for _, m := range rows {
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
	Applied *testResult
	// Trace is the "why was this series dropped" answer.
	TraceInput  string
	TraceTenant string
	Trace       *testResult
	TraceError  string
	IsDist      bool
}

type ruleRow struct {
	ruleSummary
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
		var data activeRules
		errs = append(errs, u.api.get(ctx, r, pathRules, nil, &data))
		d.Rules = u.ruleRows(data)
		// What the active rules do to the bare metric name.
		if res, err := u.trace(ctx, r, d.Tenant, d.Name); err == nil {
			d.Applied = res
		}
		if d.TraceInput != "" {
			res, err := u.trace(ctx, r, d.TraceTenant, d.TraceInput)
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

// trace runs one series (PromQL notation) through the active rules with
// the rules test API, which counts nothing into the rule metrics.
func (u *UI) trace(ctx context.Context, r *http.Request, tenant, series string) (*testResult, error) {
	var data testResponseData
	err := u.api.post(ctx, r, pathRulesTest, testRequest{Tenant: tenant, Series: []testSeries{{Series: series}}}, &data)
	if err != nil {
		return nil, err
	}
	if len(data.Results) != 1 {
		return nil, errors.New("the rules test API answered no result")
	}
	return &data.Results[0], nil
}

// ruleRows joins the active rules with their counters.
func (u *UI) ruleRows(data activeRules) []ruleRow {
	counters := RuleCounters(u.d.Gatherer)
	out := make([]ruleRow, 0, len(data.Rules))
	for _, rs := range data.Rules {
		out = append(out, ruleRow{ruleSummary: rs, Counters: sortedKV(counters[rs.Name])})
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
	view := u.reports.get(u.d.Usage.Report())
	if view != nil {
		d.Ready = true
	} else {
		errs = append(errs, errors.New("usage not classified yet: the first classification runs after the sources load"))
	}
	var dots []Dot
	var xs, ys []float64
	var order []int32
	if view != nil {
		order = view.bySeries
	}
	filter := strings.ToLower(d.Filter)
	for _, i := range order {
		m := &view.rep.Metrics[i]
		d.Counts[string(m.State)]++
		d.Cost[string(m.State)] += float64(m.Series)
		if (d.State != "" && string(m.State) != d.State) || (filter != "" && !strings.Contains(strings.ToLower(m.Name), filter)) {
			continue
		}
		d.Total++
		if len(d.Metrics) < 500 {
			d.Metrics = append(d.Metrics, *m)
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
	Ruleset activeRules
	Rules   []ruleRow
	// Suggest are the first suggestions (those saving the most series) of
	// SuggestTotal; nil before the first classification.
	Suggest      []suggestionRow
	SuggestTotal int
	SuggestAll   string
	Classified   bool
	// Governance: suggestions can be proposed as shadow versions;
	// MayPropose: the viewer may (WhyNotPropose says why not).
	Governance, MayPropose bool
	WhyNotPropose          string
}

// shownSuggestions is how many suggestions the Rules page lists.
const shownSuggestions = 20

func (u *UI) rules(w http.ResponseWriter, r *http.Request) { u.renderRules(w, r, http.StatusOK, nil) }

// renderRules renders the rules page answered with code, with actErr (a
// refused proposal) first among its errors.
func (u *UI) renderRules(w http.ResponseWriter, r *http.Request, code int, actErr error) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var d rulesData
	errs := []error{actErr}
	errs = append(errs, u.api.get(ctx, r, pathRules, nil, &d.Ruleset))
	d.Governance = u.d.Governance
	if d.Governance {
		// The example id stands for any: the propose routes share their
		// access.
		_, err := u.permits(r, http.MethodPost, proposeAPIPath("ID"))
		d.MayPropose = err == nil
		if err != nil {
			d.WhyNotPropose = err.Error()
		}
	}
	d.Rules = u.ruleRows(d.Ruleset)
	if view := u.reports.get(u.d.Usage.Report()); view != nil {
		d.Classified = true
		d.Suggest, d.SuggestTotal = view.suggestions(shownSuggestions)
	}
	d.SuggestAll = usage.PathSuggestions + "?limit=-1"
	u.renderStatus(w, r, code, "rules", "Rules and configuration", errs, d)
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
