package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/usage/tap"
)

// SourceStatus is one source's state (the /promgov/api/v1/usage/sources item).
type SourceStatus struct {
	// Name is the path or URL.
	Name string `json:"name"`
	// Kind is the source kind (Source.Kind).
	Kind string `json:"kind"`
	// Healthy is true when the last load succeeded without parse errors.
	Healthy bool `json:"healthy"`
	// LastAttempt is the time of the last load.
	LastAttempt *time.Time `json:"last_attempt"`
	// LastSuccess is the time of the last successful load.
	LastSuccess *time.Time `json:"last_success"`
	// HealthySince is when the source became continuously healthy.
	HealthySince *time.Time `json:"healthy_since"`
	// LastError is the last load error or parse error summary.
	LastError string `json:"last_error,omitempty"`
	// Items counts loaded objects (dashboards, rules, log lines).
	Items int `json:"items"`
	// Expressions counts PromQL expressions seen.
	Expressions int `json:"expressions"`
	// Consumers counts readers extracted.
	Consumers int `json:"consumers"`
	// ParseErrors counts expressions that did not parse.
	ParseErrors int `json:"parse_errors"`
	// Unparsed counts query-log queries that did not parse (cumulative).
	Unparsed int `json:"unparsed_queries,omitempty"`
	// SampleErrors are up to five parse error messages.
	SampleErrors []string `json:"sample_errors,omitempty"`

	consumers []Consumer
}

// AccessSource supplies the query statistics classification joins with. A
// distributor's reads them from the ingesters that own them; an error
// means the answer is incomplete (it may still hold what was read), and
// the drop policy then drops nothing. Implementations must be safe for
// concurrent use.
type AccessSource interface {
	AccessSnapshot(ctx context.Context) (AccessSnapshot, error)
}

// AccessSnapshot implements AccessSource for statistics held in process.
func (s *AccessStats) AccessSnapshot(context.Context) (AccessSnapshot, error) {
	return s.Snapshot(), nil
}

var _ AccessSource = (*AccessStats)(nil)

// KindQueryStats is the SourceStatus kind of the query statistics read
// from the ingesters (Deps.AccessName).
const KindQueryStats = "query_stats"

// Deps are the Manager's collaborators.
type Deps struct {
	// Sources are loaded on every round. Use SourcesFromConfig for the configured ones.
	Sources []Source
	// Access supplies query statistics; required.
	Access AccessSource
	// AccessName, when set, lists Access among the sources (kind
	// query_stats) so that its failures show and block dropping like a
	// source's.
	AccessName string
	// Costs supplies the metrics seen in traffic; required.
	Costs CostSource
	// Logger; slog.Default when nil.
	Logger *slog.Logger
	// Registerer for metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Manager reloads sources on an interval, classifies metrics and feeds the
// drop policy. It blocks in Run; its read methods are safe for concurrent use.
type Manager struct {
	cfg    Config
	deps   Deps
	policy *Policy
	start  time.Time

	mu      sync.Mutex // guards cfg, sources, access, report
	sources []*sourceEntry
	access  *SourceStatus // the query statistics' status; nil unless Deps.AccessName
	report  *Report

	loads    *prometheus.CounterVec
	lastLoad *prometheus.GaugeVec
	states   *prometheus.GaugeVec
}

// NewManager validates cfg and returns a Manager.
func NewManager(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Access == nil || deps.Costs == nil {
		return nil, errors.New("usage manager: Access and Costs are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	pol, err := NewPolicy(cfg.DropUnused, deps.Registerer)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, deps: deps, policy: pol, start: deps.Now(),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_usage_source_loads_total",
			Help: "Usage source loads by kind and result (success, failure).",
		}, []string{"kind", "result"}),
		lastLoad: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_usage_source_last_success_timestamp_seconds",
			Help: "Time of the last successful load, by source kind and name.",
		}, []string{"kind", "source"}),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_usage_metrics",
			Help: "Metric names seen in traffic by usage state.",
		}, []string{"state"}),
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{m.loads, m.lastLoad, m.states} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register usage metrics: %w", err)
			}
		}
	}
	m.sources = entries(deps.Sources, nil)
	if deps.AccessName != "" {
		m.access = &SourceStatus{Name: deps.AccessName, Kind: KindQueryStats}
	}
	return m, nil
}

// SourcesFromConfig builds the configured sources; query logs record into
// access as tenant's queries.
func SourcesFromConfig(cfg Config, access tap.Recorder, tenant string) []Source {
	var out []Source
	for _, p := range cfg.Dashboards.Paths {
		out = append(out, &DashboardFiles{Path: p})
	}
	for _, g := range cfg.Dashboards.Grafana {
		out = append(out, &GrafanaAPI{Config: g})
	}
	for _, p := range cfg.Rules.Paths {
		out = append(out, &RuleFiles{Path: p})
	}
	for _, p := range cfg.Rules.GrafanaAlertPaths {
		out = append(out, &RuleFiles{Path: p, Grafana: true})
	}
	for _, a := range cfg.Rules.APIs {
		out = append(out, &RulesAPI{Config: a})
	}
	for _, p := range cfg.Queries.LogFiles {
		out = append(out, NewQueryLog(p, tenant, access))
	}
	return out
}

// Policy returns the drop policy (its Check is the write-path hook).
func (m *Manager) Policy() *Policy { return m.policy }

// Run reloads every ReloadInterval until ctx is done. It returns nil on cancellation.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	interval := m.cfg.ReloadInterval
	m.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.Refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh loads every source once, reclassifies and updates the policy.
func (m *Manager) Refresh(ctx context.Context) {
	m.mu.Lock()
	sources := slices.Clone(m.sources)
	m.mu.Unlock()
	for _, e := range sources {
		if ctx.Err() != nil {
			return
		}
		m.loadOne(ctx, e)
	}
	m.reclassify(ctx)
}

// loadOne loads one source and records the outcome in its status (which a
// concurrent ApplyConfig may already have dropped: then nobody reads it).
func (m *Manager) loadOne(ctx context.Context, e *sourceEntry) {
	m.mu.Lock()
	timeout := m.cfg.LoadTimeout
	m.mu.Unlock()
	s := e.src
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.Load(lctx)
	now := m.deps.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := e.st
	st.LastAttempt = &now
	if err != nil {
		m.loads.WithLabelValues(s.Kind(), "failure").Inc()
		st.Healthy, st.HealthySince, st.LastError = false, nil, err.Error()
		m.deps.Logger.Warn("usage source failed to load", "kind", s.Kind(), "source", s.Name(), "err", err)
		return
	}
	m.loads.WithLabelValues(s.Kind(), "success").Inc()
	m.lastLoad.WithLabelValues(s.Kind(), s.Name()).Set(float64(now.Unix()))
	m.markHealthyLocked(st, now, res.ParseErrors == 0 || m.cfg.DropUnused.IgnoreParseErrors)
	st.LastSuccess, st.LastError = &now, ""
	if res.ParseErrors > 0 {
		st.LastError = fmt.Sprintf("%d expressions did not parse", res.ParseErrors)
		m.deps.Logger.Warn("usage source has unparseable expressions", "kind", s.Kind(), "source", s.Name(), "parse_errors", res.ParseErrors, "first", res.SampleErrors)
	}
	st.Items, st.Expressions, st.Consumers = res.Items, res.Expressions, len(res.Consumers)
	st.ParseErrors, st.SampleErrors = res.ParseErrors, res.SampleErrors
	if s.Kind() == "query_log" {
		st.Unparsed += res.Unparsed
	} else {
		st.Unparsed = res.Unparsed
		st.consumers = res.Consumers
	}
}

// markHealthyLocked records a load's outcome in st: HealthySince starts
// when a source turns healthy and is cleared when it is not. m.mu is held.
func (m *Manager) markHealthyLocked(st *SourceStatus, now time.Time, healthy bool) {
	if healthy && !st.Healthy {
		st.HealthySince = &now
	}
	if !healthy {
		st.HealthySince = nil
	}
	st.Healthy = healthy
}

// noteAccess records the outcome of reading the query statistics in their
// status entry (when listed). m.mu is held.
func (m *Manager) noteAccessLocked(snap AccessSnapshot, err error, now time.Time) {
	st := m.access
	if st == nil {
		return
	}
	st.LastAttempt = &now
	if err != nil {
		m.loads.WithLabelValues(KindQueryStats, "failure").Inc()
		if st.Healthy {
			m.deps.Logger.Warn("usage: query statistics incomplete; nothing is dropped until every ingester answers", "err", err)
		}
		m.markHealthyLocked(st, now, false)
		st.LastError = err.Error()
		return
	}
	m.loads.WithLabelValues(KindQueryStats, "success").Inc()
	m.lastLoad.WithLabelValues(KindQueryStats, st.Name).Set(float64(now.Unix()))
	m.markHealthyLocked(st, now, true)
	st.LastSuccess, st.LastError = &now, ""
	st.Items = len(snap.Metrics) + len(snap.Patterns)
}

// health summarises the sources. With no sources, usage data starts with the Manager.
func (m *Manager) health() Health {
	h := Health{Healthy: true, Since: m.start}
	for _, st := range m.statusesLocked() {
		if !st.Healthy || st.HealthySince == nil {
			return Health{}
		}
		if st.HealthySince.After(h.Since) {
			h.Since = *st.HealthySince
		}
	}
	return h
}

// Reclassify classifies with the current consumers, access stats and costs,
// and updates the policy.
func (m *Manager) Reclassify() *Report {
	m.mu.Lock()
	timeout := m.cfg.LoadTimeout
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return m.reclassify(ctx)
}

func (m *Manager) reclassify(ctx context.Context) *Report {
	access, aerr := m.deps.Access.AccessSnapshot(ctx)
	now := m.deps.Now()
	m.mu.Lock()
	m.noteAccessLocked(access, aerr, now)
	var consumers []Consumer
	for _, e := range m.sources {
		consumers = append(consumers, e.st.consumers...)
	}
	h := m.health()
	m.mu.Unlock()
	rep := Classify(consumers, access, m.deps.Costs.MetricCosts(), now)
	counts := map[State]int{}
	for _, mr := range rep.Metrics {
		counts[mr.State]++
	}
	for _, s := range []State{StateUsed, StatePartiallyUsed, StateUnused} {
		m.states.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	m.policy.Update(rep, h, now)
	m.mu.Lock()
	m.report = rep
	m.mu.Unlock()
	return rep
}

// Report returns the latest classification (nil before the first Refresh).
func (m *Manager) Report() *Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.report
}

// Sources returns the source statuses.
func (m *Manager) Sources() []SourceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SourceStatus
	for _, st := range m.statusesLocked() {
		c := *st
		c.consumers = nil
		out = append(out, c)
	}
	return out
}

// statusesLocked lists the sources' statuses, then the query statistics'.
// m.mu is held.
func (m *Manager) statusesLocked() []*SourceStatus {
	out := make([]*SourceStatus, 0, len(m.sources)+1)
	for _, e := range m.sources {
		out = append(out, e.st)
	}
	if m.access != nil {
		out = append(out, m.access)
	}
	return out
}
