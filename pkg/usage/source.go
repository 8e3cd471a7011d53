package usage

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/promgov/promgov/pkg/usage/grafana"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/usage/querylog"
	"github.com/promgov/promgov/pkg/usage/rules"
	"github.com/promgov/promgov/pkg/usage/tap"
)

// Consumer kinds reported in used_by.
const (
	KindDashboard     = "dashboard"
	KindAlert         = "alert"
	KindRecordingRule = "recording_rule"
	KindGrafanaAlert  = "grafana_alert"
	KindQuery         = "query"
)

// UsedBy names one reader of a metric.
type UsedBy struct {
	// Kind is dashboard, alert, recording_rule, grafana_alert or query.
	Kind string `json:"kind"`
	// ID identifies the reader (dashboard uid or file, rule group/name).
	ID string `json:"id"`
	// Title is human readable (dashboard › panel, rule name).
	Title string `json:"title"`
}

// Consumer is something that reads metrics: a dashboard query, a rule.
type Consumer struct {
	UsedBy
	// Records is the metric a recording rule writes ("" otherwise).
	Records string
	// Refs is what the consumer reads.
	Refs *promqlx.Refs
}

// LoadResult is what one source load produced.
type LoadResult struct {
	// Consumers are the readers found.
	Consumers []Consumer
	// Items counts the loaded objects (dashboards, rules, log lines).
	Items int
	// Expressions counts the PromQL expressions seen.
	Expressions int
	// ParseErrors counts expressions that did not parse.
	ParseErrors int
	// SampleErrors holds up to maxSampleErrors parse error messages.
	SampleErrors []string
	// Unparsed counts inputs that did not parse but do not make the source
	// unhealthy (user queries from a query log that Prometheus rejected too).
	Unparsed int
}

const maxSampleErrors = 5

func (l *LoadResult) parseError(where string, err error) {
	l.ParseErrors++
	if len(l.SampleErrors) < maxSampleErrors {
		l.SampleErrors = append(l.SampleErrors, where+": "+err.Error())
	}
}

// Source loads consumers from one place. Load is called by the Manager from
// a single goroutine; implementations need not be safe for concurrent Load
// calls. A returned error marks the source unhealthy (and blocks dropping).
type Source interface {
	// Name identifies the source (path or URL) in /promgov/api/v1/usage/sources.
	Name() string
	// Kind is dashboards_files, grafana_api, rule_files, rules_api, grafana_alert_files or query_log.
	Kind() string
	// Load loads the source.
	Load(ctx context.Context) (*LoadResult, error)
}

// dashboardsResult converts dashboards into consumers.
func dashboardsResult(ds []*grafana.Dashboard, origin string) *LoadResult {
	res := &LoadResult{Items: len(ds)}
	for _, d := range ds {
		id := d.UID
		if id == "" {
			id = origin + ":" + d.Title
		}
		for _, q := range d.Queries {
			res.Expressions++
			if q.Err != nil {
				res.parseError("dashboard "+id+" "+q.Ref, q.Err)
				continue
			}
			title := d.Title
			if q.Title != "" {
				title += " › " + q.Title
			}
			res.Consumers = append(res.Consumers, Consumer{UsedBy: UsedBy{Kind: KindDashboard, ID: id, Title: title}, Refs: q.Refs})
		}
	}
	return res
}

// rulesResult converts rules into consumers.
func rulesResult(rs []rules.Rule) *LoadResult {
	res := &LoadResult{Items: len(rs)}
	for _, r := range rs {
		res.Expressions++
		if r.Err != nil {
			res.parseError("rule "+r.ID(), r.Err)
			continue
		}
		c := Consumer{UsedBy: UsedBy{Kind: string(r.Kind), ID: r.ID(), Title: r.Name}, Refs: r.Refs}
		if r.Kind == rules.KindRecording {
			c.Records = r.Name
		}
		res.Consumers = append(res.Consumers, c)
	}
	return res
}

// DashboardFiles is a Source reading dashboards from a file or folder.
type DashboardFiles struct{ Path string }

var _ Source = (*DashboardFiles)(nil)

// Name implements Source.
func (s *DashboardFiles) Name() string { return s.Path }

// Kind implements Source.
func (s *DashboardFiles) Kind() string { return "dashboards_files" }

// Load implements Source. Any unreadable or undecodable file fails the load.
func (s *DashboardFiles) Load(context.Context) (*LoadResult, error) {
	ds, err := grafana.LoadPath(s.Path)
	if err != nil {
		return nil, fmt.Errorf("load dashboards %s: %w", s.Path, err)
	}
	return dashboardsResult(ds, s.Path), nil
}

// GrafanaAPI is a Source reading every dashboard from a Grafana instance.
type GrafanaAPI struct {
	// Config is the instance.
	Config GrafanaConfig
	// HTTPClient is optional.
	HTTPClient *http.Client
}

var _ Source = (*GrafanaAPI)(nil)

// Name implements Source.
func (s *GrafanaAPI) Name() string { return s.Config.URL }

// Kind implements Source.
func (s *GrafanaAPI) Kind() string { return "grafana_api" }

// Load implements Source.
func (s *GrafanaAPI) Load(ctx context.Context) (*LoadResult, error) {
	token, err := readSecret(s.Config.TokenFile)
	if err != nil {
		return nil, err
	}
	c, err := grafana.NewClient(grafana.ClientOptions{URL: s.Config.URL, Token: token, OrgID: s.Config.OrgID, HTTPClient: s.HTTPClient})
	if err != nil {
		return nil, err
	}
	ds, err := c.Dashboards(ctx)
	if err != nil {
		return nil, fmt.Errorf("load grafana dashboards: %w", err)
	}
	return dashboardsResult(ds, s.Config.URL), nil
}

// RuleFiles is a Source reading Prometheus rule files / PrometheusRule YAML,
// or Grafana alert provisioning files when Grafana is set.
type RuleFiles struct {
	Path    string
	Grafana bool
}

var _ Source = (*RuleFiles)(nil)

// Name implements Source.
func (s *RuleFiles) Name() string { return s.Path }

// Kind implements Source.
func (s *RuleFiles) Kind() string {
	if s.Grafana {
		return "grafana_alert_files"
	}
	return "rule_files"
}

// Load implements Source.
func (s *RuleFiles) Load(context.Context) (*LoadResult, error) {
	rs, err := rules.LoadPath(s.Path, s.Grafana)
	if err != nil {
		return nil, fmt.Errorf("load rules %s: %w", s.Path, err)
	}
	return rulesResult(rs), nil
}

// RulesAPI is a Source reading a Prometheus-compatible /api/v1/rules.
type RulesAPI struct {
	// Config is the endpoint.
	Config RulesAPIConfig
	// HTTPClient is optional.
	HTTPClient *http.Client
}

var _ Source = (*RulesAPI)(nil)

// Name implements Source.
func (s *RulesAPI) Name() string { return s.Config.URL }

// Kind implements Source.
func (s *RulesAPI) Kind() string { return "rules_api" }

// Load implements Source.
func (s *RulesAPI) Load(ctx context.Context) (*LoadResult, error) {
	token, err := readSecret(s.Config.BearerTokenFile)
	if err != nil {
		return nil, err
	}
	c, err := rules.NewClient(rules.ClientOptions{URL: s.Config.URL, Tenant: s.Config.Tenant, BearerToken: token, HTTPClient: s.HTTPClient})
	if err != nil {
		return nil, err
	}
	rs, err := c.Rules(ctx)
	if err != nil {
		return nil, fmt.Errorf("load rules api: %w", err)
	}
	return rulesResult(rs), nil
}

// QueryLog is a Source that tails a Prometheus query log file and records
// each user query (rule evaluations are skipped) for tenant. It yields no
// consumers.
type QueryLog struct {
	tailer *querylog.Tailer
	path   string
	tenant string
	rec    tap.Recorder
}

var _ Source = (*QueryLog)(nil)

// NewQueryLog returns a query log source recording into rec as tenant's
// queries (a query log does not say whose they were).
func NewQueryLog(path, tenant string, rec tap.Recorder) *QueryLog {
	return &QueryLog{tailer: querylog.NewTailer(path), path: path, tenant: tenant, rec: rec}
}

// Name implements Source.
func (s *QueryLog) Name() string { return s.path }

// Kind implements Source.
func (s *QueryLog) Kind() string { return "query_log" }

// Load implements Source.
func (s *QueryLog) Load(context.Context) (*LoadResult, error) {
	res := &LoadResult{}
	bad, err := s.tailer.ReadNew(func(e querylog.Entry) {
		if e.RuleGroup != "" {
			return
		}
		res.Items++
		res.Expressions++
		refs, err := promqlx.Extract(e.Query)
		if err != nil {
			// User queries that do not parse fail in Prometheus too: not a
			// usage blind spot, so they are counted but not fatal.
			res.Unparsed++
			return
		}
		at := e.Time
		if at.IsZero() {
			at = time.Now()
		}
		s.rec.RecordQuery(s.tenant, refs, "", at)
	})
	if err != nil {
		return nil, err
	}
	res.Unparsed += bad
	return res, nil
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
