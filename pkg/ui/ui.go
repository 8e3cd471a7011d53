package ui

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/usage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Roles of the node serving the UI.
const (
	RoleDistributor = "distributor"
	RoleIngester    = "ingester"
)

// UI paths. The overview is at /; the other pages under /ui/.
const (
	PathOverview  = "/"
	PathOffenders = "/ui/offenders"
	PathMetric    = "/ui/metric"
	PathUsage     = "/ui/usage"
	PathRules     = "/ui/rules"
	PathStatic    = "/ui/static/"
	// The configuration versions (a distributor with a governance store).
	PathConfig         = "/ui/config"
	PathConfigDiff     = "/ui/config/diff"
	PathConfigPromote  = "/ui/config/promote"
	PathConfigRollback = "/ui/config/rollback"
	// PathAggregation is the aggregation page; POSTed, it tests candidate
	// aggregation rules.
	PathAggregation = "/ui/aggregation"
	// PathJobs lists the retrospective jobs; PathJobs/{id} is one job, and
	// POST PathJobs/{id}/cancel and /resume act on it.
	PathJobs = "/ui/jobs"
	// PathSuggestions/{id}/propose (POST) proposes a suggestion as a
	// shadow version; PathConfigReject (POST) rejects a shadow version.
	PathSuggestions  = "/ui/suggestions"
	PathConfigReject = "/ui/config/reject"
)

// Deps are what the UI reads.
type Deps struct {
	// Role is RoleDistributor (the cluster's view) or RoleIngester (this
	// ingester's own).
	Role string
	// Node is this node's name.
	Node string
	// API serves promgov's APIs under /promgov/api/v1 (the binary's mux).
	API http.Handler
	// TenantHeader is the tenant header the APIs read.
	TenantHeader string
	// Gatherer is the node's own registry.
	Gatherer prometheus.Gatherer
	// Nodes answers the ingesters' health (distributor; nil on ingesters).
	Nodes NodeSource
	// Cardinality answers the analytics (the tracker on an ingester, the
	// cluster fan-out on a distributor): what GET
	// /promgov/api/v1/cardinality/ serves, without its JSON round trip.
	Cardinality cardinality.Source
	// Usage is the usage classification (distributor; nil on ingesters).
	Usage usage.Reader
	// Scope says which tenants the caller of r may see (all: every tenant
	// and the cluster's totals); nil: every caller sees all (authorisation
	// off). Called concurrently.
	Scope func(r *http.Request) (tenants []string, all bool)
	// Governance: the distributor serves the governance store's API
	// (pkg/govapi); false: the configuration pages say how to turn it on.
	Governance bool
	// Permits says whether the caller of r may also call method path of
	// the API, and names it (the author of the versions it writes): the
	// pages offer only the actions it may take and refuse the others with
	// the route's own message (auth.Middleware.Permits). nil: everyone
	// may, as "anonymous" (authorisation off). Called concurrently.
	Permits func(r *http.Request, method, path string) (who string, err error)
	// History holds the charts' time series; nil draws none.
	History *History
	Logger  *slog.Logger
}

// UI serves the pages. Safe for concurrent use.
type UI struct {
	d     Deps
	api   *apiClient
	pages map[string]*template.Template
	// snap is the ranked snapshot the lists read (History's when there is
	// one).
	snap *Snapshot
	// reports derives the pages' views of the usage classification.
	reports reportViews
}

// New parses the embedded templates.
func New(d Deps) (*UI, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.API == nil || d.Gatherer == nil || d.Cardinality == nil || (d.Role == RoleDistributor && d.Usage == nil) {
		return nil, errors.New("ui: API, Gatherer and Cardinality are required, and Usage on a distributor")
	}
	u := &UI{d: d, api: &apiClient{h: d.API, tenantHeader: d.TenantHeader}, pages: map[string]*template.Template{}}
	if d.History != nil {
		u.snap = d.History.Snapshot()
		if d.Nodes != nil {
			d.History.useNodes(d.Nodes)
		}
		if d.Usage != nil {
			// A new classification's views and suggestions are computed
			// in the background, not by the first page view after it.
			d.History.onRefresh(func() {
				if v := u.reports.get(d.Usage.Report()); v != nil {
					v.suggestions(0)
				}
			})
		}
	} else {
		u.snap = NewSnapshot(d.Cardinality, DefaultConfig().SnapshotInterval, d.Logger)
	}
	for _, p := range []string{"overview", "offenders", "metric", "usage", "rules", "config", "diff", "aggregation", "jobs", "job"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/charts.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		u.pages[p] = t
	}
	return u, nil
}

// Register mounts the pages on mux: / (GET only, exactly /), /ui/... and
// the embedded assets.
func (u *UI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.overview)
	mux.HandleFunc("GET "+PathOffenders, u.offenders)
	mux.HandleFunc("GET "+PathMetric, u.metric)
	if u.d.Role == RoleDistributor {
		mux.HandleFunc("GET "+PathUsage, u.usage)
		mux.HandleFunc("GET "+PathRules, u.rules)
		mux.HandleFunc("GET "+PathConfig, u.configPage)
		mux.HandleFunc("GET "+PathConfigDiff, u.diffPage)
		mux.HandleFunc("GET "+PathAggregation, u.aggregation)
		// The forms POSTed from the pages: refused unless they come from
		// a page of the same origin (a browser's Sec-Fetch-Site or
		// Origin), so another site cannot make a signed-in browser
		// change the configuration.
		csrf := http.NewCrossOriginProtection()
		csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "refused: this form was not sent from a page of this promgov (a cross-origin browser request)", http.StatusForbidden)
		}))
		mux.Handle("POST "+PathConfigPromote, csrf.Handler(http.HandlerFunc(u.configAction)))
		mux.Handle("POST "+PathConfigRollback, csrf.Handler(http.HandlerFunc(u.configAction)))
		mux.Handle("POST "+PathAggregation, csrf.Handler(http.HandlerFunc(u.aggregation)))
		mux.HandleFunc("GET "+PathJobs, u.jobsPage)
		mux.HandleFunc("GET "+PathJobs+"/{id}", u.jobPage)
		mux.Handle("POST "+PathJobs+"/{id}/{action}", csrf.Handler(http.HandlerFunc(u.jobAction)))
		mux.Handle("POST "+PathSuggestions+"/{id}/propose", csrf.Handler(http.HandlerFunc(u.propose)))
		mux.Handle("POST "+PathConfigReject, csrf.Handler(http.HandlerFunc(u.configAction)))
	}
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+PathStatic, http.StripPrefix(PathStatic, cacheStatic(http.FileServerFS(static))))
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// page is what every page's layout reads.
type page struct {
	Title  string
	Nav    string
	Role   string
	Node   string
	Now    string
	Errors []string
	Data   any
	// Refresh: pageOpts.Refresh.
	Refresh int
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, name, title string, errs []error, data any) {
	u.renderStatus(w, r, http.StatusOK, name, title, errs, data)
}

// renderStatus renders a page answered with code.
func (u *UI) renderStatus(w http.ResponseWriter, r *http.Request, code int, name, title string, errs []error, data any) {
	u.renderPage(w, r, code, name, title, errs, data, pageOpts{})
}

// pageOpts are what a few pages add to the layout.
type pageOpts struct {
	// Refresh reloads the page every so many seconds (0: never), for a
	// page that shows something moving (a running job).
	Refresh int
}

// renderPage renders a page answered with code, with opts.
func (u *UI) renderPage(w http.ResponseWriter, r *http.Request, code int, name, title string, errs []error, data any, opts pageOpts) {
	p := page{Title: title, Nav: name, Role: u.d.Role, Node: u.d.Node, Now: time.Now().UTC().Format(time.RFC3339), Data: data, Refresh: opts.Refresh}
	for _, err := range errs {
		if err != nil {
			p.Errors = append(p.Errors, err.Error())
		}
	}
	var buf bytes.Buffer
	if err := u.pages[name].Execute(&buf, p); err != nil {
		u.d.Logger.Warn("rendering UI page failed", "page", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
	_ = r
}

var funcs = template.FuncMap{
	"human": human,
	"metricURL": func(name, tenant string) string {
		v := url.Values{"name": {name}}
		if tenant != "" {
			v.Set("tenant", tenant)
		}
		return PathMetric + "?" + v.Encode()
	},
	"pct": func(v float64) string { return human(v*100) + "%" },
	"dur": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
	},
	"bytes": func(v float64) string {
		switch {
		case v >= 1<<30:
			return human(v/(1<<30)) + " GiB"
		case v >= 1<<20:
			return human(v/(1<<20)) + " MiB"
		case v >= 1<<10:
			return human(v/(1<<10)) + " KiB"
		}
		return human(v) + " B"
	},
	"ts": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"sub":    func(a, b float64) float64 { return a - b },
	"add":    func(a, b float64) float64 { return a + b },
	"f":      func(v uint64) float64 { return float64(v) },
	"sub1":   func(n uint64) uint64 { return n - 1 },
	"labels": labelsText,
	"i64":    func(v int64) float64 { return float64(v) },
	// rate is a per-second rate, "n/a" when unknown (NaN: under two
	// history samples).
	"rate": func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return human(v) + "/s"
	},
}
