package preview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Path is the preview API (distributors), beside the governance API's
// /promgov/api/v1/config.
const Path = web.APIPrefix + "/config/preview"

// DefaultExamples is the examples of a preview that does not ask.
const DefaultExamples = 20

// Cluster asks every ingester for its preview (cluster.FanOut). Safe for
// concurrent use.
type Cluster interface {
	Preview(ctx context.Context, req *ingesterv1.PreviewConfigRequest) ([]*ingesterv1.PreviewConfigResponse, error)
}

// Baseline is the ruleset in force (rules.Manager): a preview's "before"
// and what it does not count as the candidate's change. Safe for
// concurrent use.
type Baseline interface {
	Active() *rules.Ruleset
}

// DropUnused is the distributor's usage drop policy as the preview asks
// it (usage.Policy): what a candidate usage.drop_unused would select now.
// Safe for concurrent use.
type DropUnused interface {
	WouldDrop(cfg usage.DropConfig, now time.Time) (names map[string]bool, blocked string, err error)
}

var _ DropUnused = (*usage.Policy)(nil)

// baselineRules is the rules section of b's active ruleset as YAML.
func baselineRules(b Baseline) (string, error) {
	y, err := yaml.Marshal(struct {
		Rules []rules.RuleConfig `yaml:"rules"`
	}{b.Active().Engine.Config().Rules})
	if err != nil {
		return "", fmt.Errorf("encode the active rules: %w", err)
	}
	return string(y), nil
}

// ask asks every ingester for its preview of req against the rules in
// force and merges the answers, with what the candidate's
// usage.drop_unused would drop (drop nil: not previewed).
func ask(ctx context.Context, c Cluster, b Baseline, drop DropUnused, req Request) (Data, error) {
	base, err := baselineRules(b)
	if err != nil {
		return Data{}, err
	}
	var du *dropUnused
	if drop != nil {
		names, blocked, err := drop.WouldDrop(req.Doc.Usage.DropUnused, time.Now())
		if err != nil {
			return Data{}, fmt.Errorf("usage.drop_unused: %w", err)
		}
		du = &dropUnused{names: names, mode: req.Doc.Usage.DropUnused.Mode, blocked: blocked}
	}
	parts, err := c.Preview(ctx, &ingesterv1.PreviewConfigRequest{Rules: req.Rules, BaselineRules: base, Tenant: req.Tenant, MaxExamples: int32(req.Examples),
		Aggregations: req.Aggregations, AggregationsVersioned: req.Doc.Aggregations != nil})
	if err != nil {
		return Data{}, fmt.Errorf("impact preview: %w", err)
	}
	d := merge(parts, req.Limits, du, req.Examples)
	d.Candidate, d.Tenant = req.Hash, req.Tenant
	return d, nil
}

// Request is a decoded preview request.
type Request struct {
	// Doc is the candidate, validated.
	Doc govstore.Document
	// Hash is the content hash of its canonical YAML.
	Hash string
	// Rules is the candidate's rules section as YAML, for the ingesters.
	Rules string
	// Aggregations is the candidate's aggregations list as YAML, for the
	// ingesters (when Doc.Aggregations is set; else the ingesters keep
	// theirs).
	Aggregations string
	// Limits resolves the candidate's cardinality limits.
	Limits *cardinality.LimitResolver
	// Tenant restricts the preview; empty is every tenant.
	Tenant string
	// Examples bounds the affected series answered with traces.
	Examples int
}

// DecodeRequest decodes a preview request: body is the candidate governance
// YAML (as PUT /promgov/api/v1/config takes it), query its parameters
// (examples), tenant the request's tenant (web.RequestTenant). Every error
// names the field or parameter.
func DecodeRequest(body []byte, query url.Values, tenant string) (Request, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return Request{}, errors.New("no candidate: send the governance YAML (rules, cardinality.limits, usage.drop_unused) as the body")
	}
	doc, canon, err := govstore.Normalize(body)
	if err != nil {
		return Request{}, err
	}
	rc := rules.DefaultConfig()
	rc.Rules = doc.Rules
	eng, err := rules.Compile(rc, nil)
	if err != nil {
		return Request{}, err
	}
	_ = eng.Close(context.Background()) // compiled only to validate
	ry, err := yaml.Marshal(struct {
		Rules []rules.RuleConfig `yaml:"rules"`
	}{doc.Rules})
	if err != nil {
		return Request{}, fmt.Errorf("encode the candidate's rules: %w", err)
	}
	var aggs []byte
	if doc.Aggregations != nil {
		if aggs, err = yaml.Marshal(*doc.Aggregations); err != nil {
			return Request{}, fmt.Errorf("encode the candidate's aggregations: %w", err)
		}
	}
	lim, err := cardinality.NewLimitResolver(doc.Cardinality.Limits)
	if err != nil {
		return Request{}, fmt.Errorf("cardinality.limits.%w", err)
	}
	req := Request{Doc: doc, Hash: govstore.ContentHash(canon), Rules: string(ry), Aggregations: string(aggs), Limits: lim, Tenant: tenant, Examples: DefaultExamples}
	if s := query.Get("examples"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxExamples {
			return Request{}, fmt.Errorf("examples: %q is not a number from 0 to %d", s, MaxExamples)
		}
		req.Examples = n
	}
	return req, nil
}

// HandlerDeps are what the preview handler works with: Cluster and Rules
// are required.
type HandlerDeps struct {
	Cluster Cluster
	// Rules is the ruleset in force: the preview's "before".
	Rules Baseline
	// DropUnused previews a candidate's usage.drop_unused; nil: not
	// previewed.
	DropUnused DropUnused
	// TenantHeader is the tenant header the read APIs honour
	// (X-Scope-OrgID).
	TenantHeader string
	Logger       *slog.Logger
}

// Handler serves POST Path: the candidate in the body, the preview in the
// Prometheus envelope, against the rules in force.
func Handler(hd HandlerDeps) http.Handler {
	c, b, tenantHeader, logger := hd.Cluster, hd.Rules, hd.TenantHeader, hd.Logger
	if c == nil || b == nil {
		panic("preview.Handler: Cluster and Rules are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, govstore.MaxBodyBytes))
		if err != nil {
			web.WriteError(w, http.StatusRequestEntityTooLarge, "bad_data", fmt.Errorf("body: %w (limit %d bytes)", err, govstore.MaxBodyBytes))
			return
		}
		tenant, err := web.RequestTenant(r, tenantHeader)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		req, err := DecodeRequest(body, r.URL.Query(), tenant)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		d, err := ask(r.Context(), c, b, hd.DropUnused, req)
		if err != nil {
			logger.Warn("impact preview failed", "err", err)
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
			return
		}
		logger.Debug("impact preview", "candidate", d.Candidate, "ingesters", d.Ingesters, "metrics", d.SampledMetrics, "series_saved", d.Totals.SeriesSaved)
		web.WriteJSON(w, d)
	})
}
