// Package grafana loads Grafana dashboards — dashboard JSON files, provisioning
// folders, Kubernetes ConfigMaps and GrafanaDashboard objects that embed
// dashboard JSON, and the Grafana HTTP API — and extracts the PromQL they hold:
// panel targets (nested and collapsed rows, repeated and inlined library
// panels), template variables and annotations.
//
// Parsing functions are pure and safe for concurrent use; a Client is safe for
// concurrent use.
package grafana

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// ErrNotDashboard is returned when a document is valid JSON/YAML but holds no dashboard.
var ErrNotDashboard = errors.New("not a grafana dashboard")

// QueryKind says where in a dashboard a query sits.
type QueryKind string

// Kinds of dashboard queries.
const (
	KindPanel      QueryKind = "panel"
	KindVariable   QueryKind = "variable"
	KindAnnotation QueryKind = "annotation"
)

// Query is one PromQL expression found in a dashboard, with what it reads.
type Query struct {
	// Kind is where the query sits.
	Kind QueryKind
	// Ref identifies the query inside the dashboard: "panel 3 A",
	// "variable cluster", "annotation Deploys".
	Ref string
	// Title is the panel, variable or annotation title.
	Title string
	// Expr is the expression as written (before variable substitution).
	Expr string
	// Refs is what the expression reads; nil when Err is set.
	Refs *promqlx.Refs
	// Err is the parse error, if any.
	Err error
}

// Dashboard is the PromQL content of one dashboard.
type Dashboard struct {
	// UID is the dashboard uid (may be empty for files without one).
	UID string
	// Title is the dashboard title.
	Title string
	// Queries are all Prometheus queries in the dashboard.
	Queries []Query
	// LibraryPanels are uids of library panels referenced without an inlined
	// model; Client.Dashboard resolves them through the library elements API.
	LibraryPanels []string

	dsVars map[string]string
}

// Errors returns the queries' parse errors joined, or nil.
func (d *Dashboard) Errors() error {
	var errs []error
	for _, q := range d.Queries {
		if q.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q.Ref, q.Err))
		}
	}
	return errors.Join(errs...)
}

// Refs returns the merged references of every query in the dashboard.
func (d *Dashboard) Refs() *promqlx.Refs {
	r := promqlx.NewRefs()
	for _, q := range d.Queries {
		r.Merge(q.Refs)
	}
	return r
}

// ParseDashboard parses dashboard JSON: either the dashboard model itself or
// an object wrapping it under "dashboard" (the HTTP API and export shapes).
func ParseDashboard(data []byte) (*Dashboard, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode dashboard json: %w", err)
	}
	return fromModel(raw)
}

func fromModel(raw map[string]any) (*Dashboard, error) {
	if inner, ok := raw["dashboard"].(map[string]any); ok {
		raw = inner
	}
	_, hasPanels := raw["panels"]
	_, hasRows := raw["rows"]
	_, hasTemplating := raw["templating"]
	if !hasPanels && !hasRows && !hasTemplating {
		return nil, ErrNotDashboard
	}
	w := &walker{d: &Dashboard{UID: str(raw["uid"]), Title: str(raw["title"]), dsVars: map[string]string{}}}
	w.dsVars = w.d.dsVars
	templ, _ := raw["templating"].(map[string]any)
	vars, _ := templ["list"].([]any)
	// Datasource variables first: targets refer to them by "$name".
	for _, v := range vars {
		if vm, ok := v.(map[string]any); ok && str(vm["type"]) == "datasource" {
			w.dsVars[str(vm["name"])] = str(vm["query"])
		}
	}
	for _, v := range vars {
		if vm, ok := v.(map[string]any); ok {
			w.variable(vm)
		}
	}
	ann, _ := raw["annotations"].(map[string]any)
	anns, _ := ann["list"].([]any)
	for _, a := range anns {
		if am, ok := a.(map[string]any); ok {
			w.annotation(am)
		}
	}
	w.panels(raw["panels"], dsUnknown)
	rows, _ := raw["rows"].([]any)
	for _, r := range rows {
		if rm, ok := r.(map[string]any); ok {
			w.panels(rm["panels"], w.ds(rm["datasource"], dsUnknown))
		}
	}
	if els, ok := raw["__elements"].(map[string]any); ok {
		for _, e := range els {
			if em, ok := e.(map[string]any); ok {
				if model, ok := em["model"].(map[string]any); ok {
					w.panel(model, dsUnknown)
				}
			}
		}
	}
	return w.d, nil
}

// AddLibraryPanel adds the queries of a library panel model (as returned by
// /api/library-elements/{uid} under result.model) to the dashboard.
func (d *Dashboard) AddLibraryPanel(model map[string]any) {
	if d.dsVars == nil {
		d.dsVars = map[string]string{}
	}
	w := &walker{d: d, dsVars: d.dsVars}
	w.panel(model, dsUnknown)
}

// dsClass is what we know about a datasource.
type dsClass int

const (
	dsUnknown dsClass = iota // not stated, or a name/variable we cannot resolve: try PromQL.
	dsProm                   // Prometheus-compatible.
	dsOther                  // another plugin: skip.
	dsMixed                  // "-- Mixed --": each target decides.
)

type walker struct {
	d      *Dashboard
	dsVars map[string]string // datasource variable name → plugin type
}

// ds classifies a datasource reference, inheriting parent when absent.
func (w *walker) ds(v any, parent dsClass) dsClass {
	switch d := v.(type) {
	case nil:
		return parent
	case string:
		return w.dsName(d, parent)
	case map[string]any:
		typ, uid := str(d["type"]), str(d["uid"])
		if typ == "" {
			return w.dsName(uid, parent)
		}
		return classifyType(typ, uid)
	}
	return parent
}

func (w *walker) dsName(name string, parent dsClass) dsClass {
	switch {
	case name == "":
		return parent
	case name == "-- Mixed --":
		return dsMixed
	case name == "-- Grafana --" || name == "-- Dashboard --" || name == "__expr__" || name == "grafana":
		return dsOther
	case strings.HasPrefix(name, "$"):
		v := strings.Trim(name, "${}[]")
		if typ, ok := w.dsVars[v]; ok && typ != "" {
			return classifyType(typ, "")
		}
		return dsUnknown
	}
	return dsUnknown
}

func classifyType(typ, uid string) dsClass {
	switch {
	case uid == "-- Mixed --" || typ == "mixed" || typ == "-- Mixed --":
		return dsMixed
	case strings.Contains(typ, "prometheus"),
		// VictoriaMetrics speaks MetricsQL, a PromQL superset: parse and let
		// MetricsQL-only syntax surface as a parse error rather than a blind spot.
		strings.HasPrefix(typ, "victoriametrics") && !strings.Contains(typ, "logs"):
		return dsProm
	}
	return dsOther
}

func (w *walker) panels(v any, parent dsClass) {
	list, _ := v.([]any)
	for _, p := range list {
		if pm, ok := p.(map[string]any); ok {
			w.panel(pm, parent)
		}
	}
}

func (w *walker) panel(p map[string]any, parent dsClass) {
	if lp, ok := p["libraryPanel"].(map[string]any); ok {
		if model, ok := lp["model"].(map[string]any); ok {
			w.panel(model, parent)
		} else if _, hasTargets := p["targets"]; !hasTargets && str(lp["uid"]) != "" {
			w.d.LibraryPanels = append(w.d.LibraryPanels, str(lp["uid"]))
		}
	}
	ds := w.ds(p["datasource"], parent)
	id := panelID(p)
	title := str(p["title"])
	targets, _ := p["targets"].([]any)
	for i, t := range targets {
		tm, ok := t.(map[string]any)
		if !ok {
			continue
		}
		tds := w.ds(tm["datasource"], ds)
		if tds == dsOther || tds == dsMixed {
			continue
		}
		expr := str(tm["expr"])
		if strings.TrimSpace(expr) == "" {
			continue
		}
		ref := str(tm["refId"])
		if ref == "" {
			ref = strconv.Itoa(i)
		}
		q := Query{Kind: KindPanel, Ref: "panel " + id + " " + ref, Title: title, Expr: expr}
		q.Refs, q.Err = promqlx.Extract(expr)
		if q.Refs != nil {
			q.Refs.AddLabels(promqlx.LegendLabels(str(tm["legendFormat"]))...)
		}
		w.d.Queries = append(w.d.Queries, q)
	}
	// Rows (nested or collapsed) hold their panels here.
	w.panels(p["panels"], ds)
}

func panelID(p map[string]any) string {
	switch id := p["id"].(type) {
	case float64:
		return strconv.FormatInt(int64(id), 10)
	case string:
		return id
	}
	return "?"
}

func (w *walker) variable(v map[string]any) {
	if str(v["type"]) != "query" {
		return
	}
	if ds := w.ds(v["datasource"], dsUnknown); ds == dsOther || ds == dsMixed {
		return
	}
	var query string
	switch q := v["query"].(type) {
	case string:
		query = q
	case map[string]any:
		query = str(q["query"])
	}
	if strings.TrimSpace(query) == "" {
		query = str(v["definition"])
	}
	if strings.TrimSpace(query) == "" {
		return
	}
	name := str(v["name"])
	q := Query{Kind: KindVariable, Ref: "variable " + name, Title: firstNonEmpty(str(v["label"]), name), Expr: query}
	q.Refs, q.Err = promqlx.ExtractVariableQuery(query)
	w.d.Queries = append(w.d.Queries, q)
}

func (w *walker) annotation(a map[string]any) {
	if ds := w.ds(a["datasource"], dsUnknown); ds == dsOther || ds == dsMixed {
		return
	}
	expr := str(a["expr"])
	if t, ok := a["target"].(map[string]any); ok && expr == "" {
		expr = str(t["expr"])
	}
	if strings.TrimSpace(expr) == "" {
		return
	}
	name := str(a["name"])
	q := Query{Kind: KindAnnotation, Ref: "annotation " + name, Title: name, Expr: expr}
	q.Refs, q.Err = promqlx.Extract(expr)
	if q.Refs != nil {
		// Annotation title/text templates reference labels too.
		q.Refs.AddLabels(promqlx.LegendLabels(str(a["titleFormat"]) + str(a["textFormat"]))...)
		for _, k := range strings.Split(str(a["tagKeys"]), ",") {
			q.Refs.AddLabels(strings.TrimSpace(k))
		}
	}
	w.d.Queries = append(w.d.Queries, q)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
