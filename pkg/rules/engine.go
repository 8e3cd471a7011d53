package rules

import (
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/stage"
)

// Metadata is stage.Metadata: what is known about a series' metric family.
type Metadata = stage.Metadata

// Series is one series as seen by the engine.
type Series struct {
	// Tenant the series belongs to.
	Tenant string
	// Labels of the series, __name__ included.
	Labels labels.Labels
	// Meta is the series' metadata (RW 2.0 per-series metadata, or a
	// TypeCache lookup for RW 1.0).
	Meta Metadata
}

// Outcome is what happened to a series.
type Outcome uint8

// Outcomes.
const (
	// Kept means no enforcing rule changed the series.
	Kept Outcome = iota
	// Changed means the series was rewritten or tagged; Result.Labels holds
	// the new labels.
	Changed
	// Dropped means the series must not be forwarded.
	Dropped
)

// String returns "kept", "changed" or "dropped".
func (o Outcome) String() string {
	switch o {
	case Kept:
		return "kept"
	case Changed:
		return "changed"
	case Dropped:
		return "dropped"
	default:
		return fmt.Sprintf("outcome(%d)", uint8(o))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Outcome) UnmarshalText(b []byte) error {
	switch string(b) {
	case "kept":
		*o = Kept
	case "changed":
		*o = Changed
	case "dropped":
		*o = Dropped
	default:
		return fmt.Errorf("unknown outcome %q; want kept, changed or dropped", b)
	}
	return nil
}

// Result is the outcome of Engine.Apply for one series.
type Result struct {
	// Action is Kept, Changed or Dropped.
	Action Outcome
	// Labels are the labels to forward: the input labels when Kept, the new
	// labels when Changed, the labels at the time of the drop when Dropped.
	Labels labels.Labels
	// Rule is the rule that dropped the series or, when Changed, the last
	// rule that changed it.
	Rule string
	// Reason explains what Rule found.
	Reason string
}

// Engine applies a compiled ruleset. It is immutable and safe for concurrent
// use; build one with Compile.
type Engine struct {
	rules    []*rule
	scheme   model.ValidationScheme
	cfg      Config
	metrics  *Metrics
	scratchs sync.Pool
	batches  sync.Pool  // *batch, for ApplyBatch
	hasBatch bool       // some rule's stage is a BatchStage
	names    *nameCache // nil when no rule is name-only
	seen     *seriesCache
	// noShortcuts evaluates every rule fully (no probe, no name cache), for
	// tests that prove the shortcuts change nothing.
	noShortcuts bool
	// owned are the plugins Compile loaded for this engine, which Close
	// releases (a Manager's engines own none: the Manager does).
	owned []*plugin.Plugin
	// live are the stages whose verdicts change between reloads; what
	// the caches remember is keyed by their Epoch.
	live []LiveStage
}

// Epoch is the sum of the engine's live stages' generations (0 without
// any): it changes whenever a live stage's verdict may have changed, and
// outcomes remembered under another epoch must not be replayed.
func (e *Engine) Epoch() uint64 {
	var n uint64
	for _, s := range e.live {
		n += s.Generation()
	}
	return n
}

// Close releases the plugins the engine owns (rules of kind plugin
// compiled with Compile), waiting until ctx is done at most for their
// batches in flight. An engine without plugins has nothing to release; the
// engines of a Manager are released by Manager.Close.
func (e *Engine) Close(ctx context.Context) error {
	owned := e.owned
	e.owned = nil
	return closeAll(ctx, owned)
}

// scratch is per-Apply working state, pooled so that Apply does not allocate.
type scratch struct {
	lb *labels.Builder
	// view holds the labels being evaluated (the series as left by the
	// rules before); Apply keeps it current.
	view  lview
	isSet bool // lb holds the view's labels plus relabel changes
	buf   []byte
	// in is the stage input, kept here so passing it does not allocate.
	in StageInput
	// run is the series apply takes through the rules.
	run run
}

func newScratch() *scratch {
	return &scratch{lb: labels.NewBuilder(labels.EmptyLabels()), buf: make([]byte, 0, 256)}
}

// get returns the value of name in the labels being relabelled.
func (sc *scratch) get(name string) string {
	if sc.isSet {
		return sc.lb.Get(name)
	}
	return sc.view.get(name)
}

// Config returns the configuration the engine was compiled from.
func (e *Engine) Config() Config { return e.cfg }

// Len returns the number of rules.
func (e *Engine) Len() int { return len(e.rules) }

// UsesMetadata reports whether some rule reads the series' metadata (type or
// unit), so that callers can skip looking it up when none does.
func (e *Engine) UsesMetadata() bool {
	for _, r := range e.rules {
		if r.naming != nil && (r.naming.typeSuffixes || r.naming.unitSuffixes) {
			return true
		}
	}
	return false
}

// Apply runs every rule in order on s and returns the outcome. tr, when not
// nil, receives one step per rule, and the run is a trace: it counts
// nothing into the rule metrics (a trace or test is not traffic). Apply
// does not modify s and does not allocate for series that no rule touches.
func (e *Engine) Apply(s *Series, tr *Trace) Result { return e.apply(s, tr, nil) }

// ApplyRecorded is Apply without a trace that also records in fx the rule
// counters it incremented, so that a caller which remembers the outcome of
// a series can give the same outcome to the same series later and Replay
// fx instead of running the rules again: the rule metrics then read as if
// every rule had run. fx is reset first.
func (e *Engine) ApplyRecorded(s *Series, fx *Effects) Result {
	*fx = Effects{}
	return e.apply(s, nil, fx)
}

func (e *Engine) apply(s *Series, tr *Trace, fx *Effects) Result {
	if len(e.rules) == 0 {
		return Result{Action: Kept, Labels: s.Labels}
	}
	sc := e.scratchs.Get().(*scratch)
	defer e.scratchs.Put(sc)
	rn := &sc.run // not released after: like the view, it keeps the last series
	if e.begin(rn, s, fx, sc, tr) {
		return rn.res
	}
	sc.in = StageInput{Builder: sc.lb}
	for i, r := range e.rules {
		if e.step(i, r, s, rn, fx, sc, tr) {
			return rn.res
		}
	}
	return e.finish(s, rn, fx, tr)
}

// invalid returns why ls cannot be forwarded, or "" when it can.
func (e *Engine) invalid(ls labels.Labels) string {
	name := ls.Get(model.MetricNameLabel)
	if name == "" {
		return "no __name__ label"
	}
	if !e.scheme.IsValidMetricName(name) {
		return fmt.Sprintf("metric name %q is invalid (%s)", name, e.scheme)
	}
	var bad string
	ls.Range(func(l labels.Label) {
		if bad == "" && !e.scheme.IsValidLabelName(l.Name) {
			bad = fmt.Sprintf("label name %q is invalid (%s)", l.Name, e.scheme)
		}
		if bad == "" && !model.LabelValue(l.Value).IsValid() {
			bad = fmt.Sprintf("value of label %q is not valid UTF-8", l.Name)
		}
	})
	if bad == "" {
		if dup, ok := ls.HasDuplicateLabelNames(); ok {
			bad = fmt.Sprintf("duplicate label %q", dup)
		}
	}
	return bad
}
