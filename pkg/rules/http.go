package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/web"
)

// The rules API paths (under web.APIPrefix).
const (
	PathRules = web.APIPrefix + "/rules"
	PathTest  = PathRules + "/test"
)

// MaxTestSeries bounds the series of one POST /promgov/api/v1/rules/test request.
const MaxTestSeries = 10000

// TenantHeader is read for the tenant of test requests that do not name one.
const TenantHeader = "X-Scope-OrgID"

// TestRequest is the JSON body of POST /promgov/api/v1/rules/test.
type TestRequest struct {
	// Tenant applies to series that do not name their own.
	Tenant string `json:"tenant,omitempty"`
	// Series to test.
	Series []TestSeries `json:"series,omitempty"`
	// Exposition is Prometheus text exposition; its # TYPE and # UNIT lines
	// give the metadata of its series.
	Exposition string `json:"exposition,omitempty"`
	// Rules is an optional candidate configuration (YAML, same format as the
	// configuration file) tested instead of the active ruleset.
	Rules string `json:"rules,omitempty"`
}

// TestSeries is one input series of a TestRequest: either Labels or Series
// (PromQL notation, e.g. `http_requests_total{job="api"}`).
type TestSeries struct {
	Tenant string            `json:"tenant,omitempty"`
	Series string            `json:"series,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Type   string            `json:"type,omitempty"`
	Unit   string            `json:"unit,omitempty"`
}

// TestResponseData is the data of a successful test response.
type TestResponseData struct {
	// Ruleset identifies the rules used ("candidate" when from the request).
	Ruleset RulesetInfo `json:"ruleset"`
	// Results has one entry per input series, in input order.
	Results []TestResult `json:"results"`
}

// RulesetInfo identifies a ruleset.
type RulesetInfo struct {
	Hash      string    `json:"hash"`
	LoadedAt  time.Time `json:"loaded_at,omitzero"`
	Candidate bool      `json:"candidate"`
	Rules     int       `json:"rules"`
}

// TestResult is the outcome for one series.
type TestResult struct {
	Tenant string      `json:"tenant"`
	Input  string      `json:"input"`
	Type   string      `json:"type,omitempty"`
	Unit   string      `json:"unit,omitempty"`
	Action Outcome     `json:"action"`
	Output string      `json:"output,omitempty"`
	Rule   string      `json:"rule,omitempty"`
	Reason string      `json:"reason,omitempty"`
	Trace  []TraceStep `json:"trace"`
	// Aggregations is what the ingesters' aggregation rules do to the
	// output series (docs/aggregation.md); absent when none reads it.
	Aggregations []aggregate.Effect `json:"aggregations,omitempty"`
}

// AggregationDescriber tells what the aggregation rules do to a series.
// aggregate.Engine implements it; Describe is safe for concurrent use.
type AggregationDescriber interface {
	Describe(tenant string, ls labels.Labels, typ string, nativeHistogram bool) []aggregate.Effect
}

// TestHandler serves POST /promgov/api/v1/rules/test. The body is either a JSON
// TestRequest (Content-Type application/json) or a text exposition
// (text/plain or application/openmetrics-text), in which case the tenant
// comes from the X-Scope-OrgID header or the tenant query parameter. Every
// series is run through the active ruleset of m, or through the candidate
// ruleset of the request, with a trace. Candidate rulesets count nothing.
func TestHandler(m *Manager, logger *slog.Logger) http.Handler {
	return TestHandlerWithAggregations(m, nil, logger)
}

// TestHandlerWithAggregations is TestHandler that also shows what the
// aggregation rules of agg (nil: none) do to each output series.
func TestHandlerWithAggregations(m *Manager, agg AggregationDescriber, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			web.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", errors.New("use POST"))
			return
		}
		active := m.Active()
		limit := active.Engine.cfg.TestMaxBodyBytes
		if limit <= 0 {
			limit = DefaultTestMaxBodyBytes
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				web.WriteError(w, http.StatusRequestEntityTooLarge, "bad_data", fmt.Errorf("body larger than %d bytes (rules_test_max_body_bytes)", limit))
				return
			}
			web.WriteError(w, http.StatusBadRequest, "bad_data", fmt.Errorf("read body: %w", err))
			return
		}
		tenant := r.Header.Get(TenantHeader)
		if q := r.URL.Query().Get("tenant"); q != "" {
			tenant = q
		}
		req, err := DecodeTestRequest(body, r.Header.Get("Content-Type"), tenant)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		data, err := runTestRequest(active, req, agg)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		logger.Debug("rules test request", "series", len(data.Results), "candidate", data.Ruleset.Candidate)
		web.WriteJSON(w, data)
	})
}

// DecodeTestRequest decodes a test request body of the given content type.
// tenant is used when the body does not name one.
func DecodeTestRequest(body []byte, contentType, tenant string) (TestRequest, error) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	var req TestRequest
	switch mediaType {
	case "application/json":
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return TestRequest{}, fmt.Errorf("decode JSON test request: %w", err)
		}
	case "text/plain", "application/openmetrics-text":
		s, err := parseExposition(body, contentType)
		if err != nil {
			return TestRequest{}, err
		}
		req.Series = s
	default:
		return TestRequest{}, fmt.Errorf("unsupported Content-Type %q: use application/json, text/plain or application/openmetrics-text", mediaType)
	}
	if req.Tenant == "" {
		req.Tenant = tenant
	}
	if req.Exposition != "" {
		s, err := parseExposition([]byte(req.Exposition), "text/plain")
		if err != nil {
			return TestRequest{}, err
		}
		req.Series = append(req.Series, s...)
		req.Exposition = ""
	}
	if len(req.Series) == 0 {
		return TestRequest{}, errors.New("no series: give series or an exposition")
	}
	if len(req.Series) > MaxTestSeries {
		return TestRequest{}, fmt.Errorf("%d series exceed the limit of %d per request", len(req.Series), MaxTestSeries)
	}
	return req, nil
}

// RunTestRequest runs req against active, or against the candidate rules of
// req when set (compiled without metrics).
func RunTestRequest(active *Ruleset, req TestRequest) (TestResponseData, error) {
	return runTestRequest(active, req, nil)
}

func runTestRequest(active *Ruleset, req TestRequest, agg AggregationDescriber) (TestResponseData, error) {
	eng := active.Engine
	info := RulesetInfo{Hash: active.Hash, LoadedAt: active.LoadedAt, Rules: eng.Len()}
	if req.Rules != "" {
		cfg, err := LoadConfig([]byte(req.Rules))
		if err != nil {
			return TestResponseData{}, fmt.Errorf("candidate rules: %w", err)
		}
		if eng, err = Compile(cfg, nil); err != nil {
			return TestResponseData{}, fmt.Errorf("candidate rules: %w", err)
		}
		defer eng.Close(context.Background())
		hash, err := configHash(cfg)
		if err != nil {
			return TestResponseData{}, err
		}
		info = RulesetInfo{Hash: hash, Candidate: true, Rules: eng.Len()}
		candAgg, found, err := candidateAggregations([]byte(req.Rules))
		if err != nil {
			return TestResponseData{}, err
		}
		if found {
			agg = candAgg
		}
	}
	out := TestResponseData{Ruleset: info, Results: make([]TestResult, 0, len(req.Series))}
	for i, ts := range req.Series {
		s, err := ts.toSeries(req.Tenant)
		if err != nil {
			return TestResponseData{}, fmt.Errorf("series[%d]: %w", i, err)
		}
		var tr Trace
		res := eng.Apply(&s, &tr)
		tres := TestResult{
			Tenant: s.Tenant, Input: s.Labels.String(), Type: string(s.Meta.Type), Unit: s.Meta.Unit,
			Action: res.Action, Rule: res.Rule, Reason: res.Reason, Trace: tr.Steps,
		}
		if res.Action != Dropped {
			tres.Output = res.Labels.String()
			if agg != nil {
				tres.Aggregations = agg.Describe(s.Tenant, res.Labels, string(s.Meta.Type), false)
			}
		}
		if tres.Trace == nil {
			tres.Trace = []TraceStep{}
		}
		out.Results = append(out.Results, tres)
	}
	return out, nil
}

// RulesHandler serves GET /promgov/api/v1/rules: the active ruleset with its hash,
// load time, a summary per rule and the configuration as YAML.
func RulesHandler(m *Manager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			web.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", errors.New("use GET"))
			return
		}
		active := m.Active()
		cfg := active.Engine.cfg
		y, err := yaml.Marshal(cfg)
		if err != nil {
			web.WriteError(w, http.StatusInternalServerError, "internal", err)
			return
		}
		data := RulesData{Hash: active.Hash, LoadedAt: active.LoadedAt, YAML: string(y), Rules: make([]RuleSummary, 0, len(cfg.Rules))}
		for i := range cfg.Rules {
			rc := &cfg.Rules[i]
			kind, _ := rc.Kind()
			data.Rules = append(data.Rules, RuleSummary{Name: rc.Name, Kind: kind, Mode: rc.EffectiveMode(), Action: rc.Action, Scope: rc.Scope, Config: rc})
		}
		web.WriteJSON(w, data)
	})
}

// RulesData is the data of GET /promgov/api/v1/rules.
type RulesData struct {
	Hash     string        `json:"hash"`
	LoadedAt time.Time     `json:"loaded_at"`
	Rules    []RuleSummary `json:"rules"`
	YAML     string        `json:"yaml"`
}

// RuleSummary describes one active rule.
type RuleSummary struct {
	Name   string      `json:"name"`
	Kind   string      `json:"kind"`
	Mode   Mode        `json:"mode"`
	Action Action      `json:"action,omitempty"`
	Scope  ScopeConfig `json:"scope"`
	Config *RuleConfig `json:"config"`
}

// toSeries converts a TestSeries; defaultTenant applies when it names none.
func (ts *TestSeries) toSeries(defaultTenant string) (Series, error) {
	s := Series{Tenant: ts.Tenant, Meta: Metadata{Type: model.MetricType(ts.Type), Unit: ts.Unit}}
	if s.Tenant == "" {
		s.Tenant = defaultTenant
	}
	if s.Tenant != "" {
		// The tenant rules of the write path: a tenant it refuses is
		// never one whose rules could be tested.
		if err := remotewrite.ValidateTenantID(s.Tenant); err != nil {
			return Series{}, err
		}
	}
	switch {
	case ts.Series != "" && len(ts.Labels) > 0:
		return Series{}, errors.New("set either series or labels, not both")
	case ts.Series != "":
		ls, err := parseSeries(ts.Series)
		if err != nil {
			return Series{}, err
		}
		s.Labels = ls
	case len(ts.Labels) > 0:
		s.Labels = labelsFromMap(ts.Labels)
	default:
		return Series{}, errors.New("empty series: set series or labels")
	}
	if err := validType(s.Meta.Type); err != nil {
		return Series{}, err
	}
	return s, nil
}

func validType(t model.MetricType) error {
	switch t {
	case "", model.MetricTypeCounter, model.MetricTypeGauge, model.MetricTypeHistogram, model.MetricTypeGaugeHistogram,
		model.MetricTypeSummary, model.MetricTypeInfo, model.MetricTypeStateset, model.MetricTypeUnknown:
		return nil
	}
	return fmt.Errorf("unknown metric type %q", t)
}
