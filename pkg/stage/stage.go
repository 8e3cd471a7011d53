package stage

import (
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// Stage is the work of one rule on one series: the one interface every rule
// kind implements, built in or plugged in. A Stage only decides (a Consumer
// also folds samples); the engine around it applies the rule's scope and
// mode, counts the verdict, records it in traces and remembers outcomes,
// the same way for every kind.
//
// Concurrency: Eval is called from many goroutines at once, so a Stage is
// immutable after it is built (or synchronises itself). in and the builder
// it carries belong to the caller and are valid only during the call.
type Stage interface {
	// Eval returns what the stage does to the series in: nothing (the zero
	// Verdict), or an action with a reason. It changes no state: a Consumer
	// answers what Consume would do without consuming.
	Eval(in *Input) Verdict
}

// BatchStage is a Stage that can also decide for many series in one call,
// which pays off when a call has a fixed cost (a WebAssembly plugin crosses
// into its sandbox once per batch). The engine treats each out[i] exactly
// like Eval's verdict for ins[i].
//
// Concurrency: like Eval, EvalBatch is called from many goroutines at
// once. ins and out belong to the caller and are valid only during the
// call; the inputs may share one Builder, so a stage uses it for one input
// at a time (labels.Builder.Labels returns a copy, which a verdict may
// keep).
type BatchStage interface {
	Stage
	// EvalBatch sets out[i] to what Eval(ins[i]) would return, for every
	// i (len(out) == len(ins)). A stage whose batch call fails as a whole
	// (a plugin's timeout) answers every series of it with its fallback
	// verdict, marked Transient.
	EvalBatch(ins []*Input, out []Verdict)
}

// Input is one series as a stage sees it: as left by the enforcing stages
// before it.
type Input struct {
	// Tenant the series belongs to.
	Tenant string
	// Labels of the series, __name__ included. Never modify them.
	Labels labels.Labels
	// Meta is the metric family's metadata (type and unit may be unknown).
	Meta Metadata
	// WantLabels is false when only the verdict's action and reason are
	// needed (a shadow rule being counted): a stage may then leave
	// Verdict.Labels empty and save building them.
	WantLabels bool
	// Builder is a scratch builder a stage may Reset and use to build its
	// Verdict.Labels.
	Builder *labels.Builder
}

// Verdict is what a stage does to a series.
type Verdict struct {
	// Action is "" when the stage leaves the series alone, else one of the
	// Action constants.
	Action Action
	// Labels are the series' new labels for ActionRewrite and ActionTag
	// (when Input.WantLabels), and the first series an ActionAggregate or
	// ActionCopy folds it into.
	Labels labels.Labels
	// Reason explains the action, shown in traces and drop answers; for a
	// Consumer that lets a series through (Action ""), why it did.
	Reason string
	// TypeUnknown is true when type-dependent checks were skipped because
	// the metric type is unknown (counted per rule).
	TypeUnknown bool
	// Transient is true when the verdict must not be remembered for the
	// series (a plugin failed and its on_error verdict stood in).
	Transient bool
}

// Hit reports whether the stage acts on the series (in any mode).
func (v *Verdict) Hit() bool { return v.Action != "" }

// Action is what a stage does with a series.
type Action string

// Actions.
const (
	// ActionDrop drops the series.
	ActionDrop Action = "drop"
	// ActionRewrite changes the series so that it complies.
	ActionRewrite Action = "rewrite"
	// ActionTag adds the tag label (value: rule name) and forwards the
	// series.
	ActionTag Action = "tag"
	// ActionWarn only counts the violation.
	ActionWarn Action = "warn"
	// ActionAggregate takes the series' samples into aggregates (a
	// Consumer); the series itself is not written.
	ActionAggregate Action = "aggregate"
	// ActionCopy takes a copy of the series' samples into aggregates (a
	// Consumer with keep_input); the series is written as well.
	ActionCopy Action = "copy"
)

// Metadata is what is known about a series' metric family.
type Metadata struct {
	// Type is the metric type; "" (or "unknown") when unknown.
	Type model.MetricType
	// Unit is the metric unit such as "seconds"; "" when none.
	Unit string
	// Help is the help text.
	Help string
}

// TypeKnown reports whether md carries a usable metric type.
func (md *Metadata) TypeKnown() bool {
	return md.Type != "" && md.Type != model.MetricTypeUnknown
}
