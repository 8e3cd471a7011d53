package retro

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"golang.org/x/time/rate"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/rules"
)

// Modes of a job.
const (
	ModeDryRun  = "dry_run"
	ModeExecute = "execute"
	// ModeOpenMetrics writes the transformed series to OpenMetrics files
	// for promtool instead of the backend (the TSDB-block route,
	// openmetrics.go); it deletes nothing.
	ModeOpenMetrics = "openmetrics"
)

// Spec is what a job is asked to do (the body of POST .../jobs/retrospective).
type Spec struct {
	// Rules to apply: Candidate (an inline governance document, YAML), or
	// Version (a stored governance version; 0 with no Candidate is the
	// active one); Rule narrows either to the one rule of that name.
	Candidate string `json:"candidate,omitempty"`
	Version   uint64 `json:"version,omitempty"`
	Rule      string `json:"rule,omitempty"`
	// Selector chooses the stored series (PromQL series selector).
	Selector string `json:"selector"`
	// Start and End bound the samples rewritten (inclusive).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Tenant is the tenant rule scopes see and remote write sends.
	Tenant string `json:"tenant,omitempty"`
	// Backend defaults to the process's configured one.
	Backend *HTTPBackendConfig `json:"backend,omitempty"`
	// Mode is dry_run (default) or execute.
	Mode string `json:"mode,omitempty"`
	// DeleteOriginals deletes each batch's originals once their copy is
	// verified.
	DeleteOriginals bool `json:"delete_originals,omitempty"`
	// CleanTombstones asks Prometheus, once every batch is done, to remove
	// the deleted samples from disk (/api/v1/admin/tsdb/clean_tombstones)
	// instead of at the next compaction. Only with delete_originals.
	CleanTombstones bool      `json:"clean_tombstones,omitempty"`
	Throttles       Throttles `json:"throttles"`
	// Confirm is required to execute over more than Config.ConfirmAboveSeries
	// series.
	Confirm bool `json:"confirm,omitempty"`
}

func (s *Spec) startMs() int64 { return s.Start.UnixMilli() }
func (s *Spec) endMs() int64   { return s.End.UnixMilli() }

// BadRequestError is a job that cannot start; HTTP answers 400 with it.
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Err: fmt.Errorf(format, args...)}
}

// validate checks what needs no backend nor store.
func (s *Spec) validate(now time.Time) error {
	if s.Mode == "" {
		s.Mode = ModeDryRun
	}
	if s.Mode != ModeDryRun && s.Mode != ModeExecute && s.Mode != ModeOpenMetrics {
		return badRequest("mode %q: want %s, %s or %s", s.Mode, ModeDryRun, ModeExecute, ModeOpenMetrics)
	}
	if s.Selector == "" {
		return badRequest("selector is required (a PromQL series selector such as {__name__=~\"http_.*\"})")
	}
	if _, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s.Selector); err != nil {
		return badRequest("selector %q: %v", s.Selector, err)
	}
	if s.Start.IsZero() || s.End.IsZero() {
		return badRequest("start and end are required (RFC 3339 times)")
	}
	if !s.End.After(s.Start) {
		return badRequest("range: end %s is not after start %s", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	if s.End.After(now.Add(10 * time.Minute)) {
		return badRequest("range: end %s is in the future", s.End.Format(time.RFC3339))
	}
	if s.Candidate != "" && s.Version != 0 {
		return badRequest("candidate and version: give one of them")
	}
	if s.Mode == ModeDryRun && s.DeleteOriginals {
		s.DeleteOriginals = false
	}
	if s.Mode == ModeOpenMetrics && s.DeleteOriginals {
		return badRequest("delete_originals: an %s job only writes files; delete the originals once their blocks are in place (docs/retrospective.md)", ModeOpenMetrics)
	}
	if s.CleanTombstones && !s.DeleteOriginals && s.Mode == ModeExecute {
		return badRequest("clean_tombstones: only with delete_originals (without deletes there are no tombstones to clean)")
	}
	return s.Throttles.validate()
}

// Throttles bound the load a job puts on the backend; 0 means no bound.
type Throttles struct {
	MaxSeriesPerSecond  float64 `json:"max_series_per_second,omitempty"`
	MaxSamplesPerSecond float64 `json:"max_samples_per_second,omitempty"`
	// MaxConcurrency is the number of batches in flight (default 1).
	MaxConcurrency int `json:"max_concurrency,omitempty"`
}

func (t *Throttles) validate() error {
	if t.MaxSeriesPerSecond < 0 || t.MaxSamplesPerSecond < 0 || t.MaxConcurrency < 0 {
		return badRequest("throttles: max_series_per_second, max_samples_per_second and max_concurrency must not be negative")
	}
	if t.MaxConcurrency == 0 {
		t.MaxConcurrency = 1
	}
	if t.MaxConcurrency > 64 {
		return badRequest("throttles.max_concurrency %d: at most 64", t.MaxConcurrency)
	}
	return nil
}

// estimate is the seconds series and samples take at the throttles (the
// slower of the two; 0 when neither is set).
func (t Throttles) estimate(series, samples int64) float64 {
	var s float64
	if t.MaxSeriesPerSecond > 0 {
		s = float64(series) / t.MaxSeriesPerSecond
	}
	if t.MaxSamplesPerSecond > 0 {
		s = math.Max(s, float64(samples)/t.MaxSamplesPerSecond)
	}
	return s
}

// limiter applies Throttles' rates; its zero rates never wait.
type limiter struct{ seriesL, samplesL *rate.Limiter }

func newLimiter(t Throttles) *limiter {
	l := &limiter{}
	if t.MaxSeriesPerSecond > 0 {
		l.seriesL = rate.NewLimiter(rate.Limit(t.MaxSeriesPerSecond), max(1, int(t.MaxSeriesPerSecond)))
	}
	if t.MaxSamplesPerSecond > 0 {
		l.samplesL = rate.NewLimiter(rate.Limit(t.MaxSamplesPerSecond), max(1, int(t.MaxSamplesPerSecond)))
	}
	return l
}

func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return ctx.Err()
	}
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (l *limiter) series(ctx context.Context, n int) error  { return waitN(ctx, l.seriesL, n) }
func (l *limiter) samples(ctx context.Context, n int) error { return waitN(ctx, l.samplesL, n) }

// Governance is what a job applies: the distributors' rules, then the
// ingesters' aggregation rules (aggregate.go).
type Governance struct {
	Rules        []rules.RuleConfig
	Aggregations []aggregate.RuleConfig
}

// RuleSource gives the governance of a stored version (0: the active one).
// Safe for concurrent use.
type RuleSource interface {
	Governance(ctx context.Context, version uint64) (Governance, error)
}

// StoreRules reads versions from the governance store.
type StoreRules struct{ Store *govstore.Store }

// Governance implements RuleSource.
func (s StoreRules) Governance(ctx context.Context, version uint64) (Governance, error) {
	var v *govstore.Version
	if version == 0 {
		st, err := s.Store.Resolve(ctx)
		if err != nil {
			return Governance{}, err
		}
		if st.Active == nil {
			return Governance{}, badRequest("version: the store has no active version")
		}
		v = st.Active
	} else {
		var err error
		if v, err = s.Store.Get(ctx, version); err != nil {
			if errors.Is(err, govstore.ErrNotFound) {
				return Governance{}, badRequest("version %d: %v", version, err)
			}
			return Governance{}, err
		}
	}
	doc, err := govstore.ParseDocument([]byte(v.Body))
	if err != nil {
		return Governance{}, badRequest("version %d: %v", v.Number, err)
	}
	return documentGovernance(doc), nil
}

func documentGovernance(doc govstore.Document) Governance {
	g := Governance{Rules: doc.Rules}
	if doc.Aggregations != nil {
		g.Aggregations = *doc.Aggregations
	}
	return g
}

// ActiveRules is the rules a distributor runs, without a store: only
// version 0 exists, and it has no aggregation rules (those are in each
// ingester's file; give them in a candidate).
type ActiveRules struct{ Manager *rules.Manager }

// Governance implements RuleSource.
func (a ActiveRules) Governance(_ context.Context, version uint64) (Governance, error) {
	if version != 0 {
		return Governance{}, badRequest("version %d: no governance store is configured (--governance.store.backend); give the rules as candidate", version)
	}
	return Governance{Rules: a.Manager.Active().Engine.Config().Rules}, nil
}

// resolved is the governance a job keeps, as YAML, fixed at submission.
type resolved struct {
	rules, aggregations string
}

// resolveRules returns the rules and aggregation rules spec asks for, as
// the YAML kept in the job, and the compiled rules. Rule narrows the rules
// to one; the aggregation rules stay whole (they decide only what merges
// and what the outputs are).
func resolveRules(ctx context.Context, spec *Spec, src RuleSource) (resolved, *rules.Engine, error) {
	var g Governance
	if spec.Candidate != "" {
		doc, err := govstore.ParseDocument([]byte(spec.Candidate))
		if err != nil {
			return resolved{}, nil, badRequest("candidate: %v", err)
		}
		g = documentGovernance(doc)
	} else {
		if src == nil {
			return resolved{}, nil, badRequest("candidate is required: this node has no governance rules to read versions from")
		}
		var err error
		if g, err = src.Governance(ctx, spec.Version); err != nil {
			return resolved{}, nil, err
		}
	}
	list := g.Rules
	if spec.Rule != "" {
		var one []rules.RuleConfig
		for _, r := range list {
			if r.Name == spec.Rule {
				one = append(one, r)
			}
		}
		if len(one) == 0 {
			return resolved{}, nil, badRequest("rule %q: no rule of that name in the chosen rules", spec.Rule)
		}
		list = one
	}
	if len(list) == 0 {
		return resolved{}, nil, badRequest("rules: the chosen rules are empty, nothing to apply")
	}
	b, err := yaml.Marshal(struct {
		Rules []rules.RuleConfig `yaml:"rules"`
	}{list})
	if err != nil {
		return resolved{}, nil, err
	}
	out := resolved{rules: string(b)}
	if len(g.Aggregations) > 0 {
		if _, err := aggregate.New(aggregate.Config{Rules: g.Aggregations}, nil, nil); err != nil {
			return resolved{}, nil, badRequest("aggregations: %v", err)
		}
		ab, err := yaml.Marshal(g.Aggregations)
		if err != nil {
			return resolved{}, nil, err
		}
		out.aggregations = string(ab)
	}
	eng, err := compileRules(out.rules)
	if err != nil {
		return resolved{}, nil, badRequest("rules: %v", err)
	}
	return out, eng, nil
}

// compileRules compiles the rules YAML a job keeps.
func compileRules(y string) (*rules.Engine, error) {
	cfg, err := rules.LoadConfig([]byte(y))
	if err != nil {
		return nil, err
	}
	return rules.Compile(cfg, nil)
}
