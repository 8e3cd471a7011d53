package rules

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// KindValidation marks the trace step of the final validity check that drops
// a series rewritten into an invalid state.
const KindValidation = "validation"

// Effect is what a rule did (or, in shadow mode, would have done).
type Effect string

// Effects recorded in traces.
const (
	EffectOutOfScope Effect = "out_of_scope"  // tenant or selector did not match
	EffectNone       Effect = "none"          // in scope, nothing to do
	EffectDropped    Effect = "dropped"       // enforce: series dropped
	EffectRewritten  Effect = "rewritten"     // enforce: series rewritten
	EffectTagged     Effect = "tagged"        // enforce: tag label added
	EffectWarned     Effect = "warned"        // enforce: violation counted
	EffectWouldDrop  Effect = "would_drop"    // shadow mode
	EffectWouldRewr  Effect = "would_rewrite" // shadow mode
	EffectWouldTag   Effect = "would_tag"     // shadow mode
	EffectWouldWarn  Effect = "would_warn"    // shadow mode
)

// TraceStep records one rule's decision for one series.
type TraceStep struct {
	Rule        string `json:"rule"`
	Kind        string `json:"kind"`
	Mode        Mode   `json:"mode"`
	InScope     bool   `json:"in_scope"`
	Matched     bool   `json:"matched"`
	TypeUnknown bool   `json:"type_unknown,omitempty"`
	Action      Action `json:"action,omitempty"`
	Effect      Effect `json:"effect"`
	Reason      string `json:"reason,omitempty"`
	Before      string `json:"before,omitempty"`
	After       string `json:"after,omitempty"`
}

// Trace collects the decisions of every rule for one series. It is not safe
// for concurrent use; use one Trace per series (Reset to reuse).
type Trace struct {
	Steps []TraceStep `json:"steps"`
}

// Reset empties the trace, keeping its capacity.
func (t *Trace) Reset() { t.Steps = t.Steps[:0] }

func (t *Trace) add(s TraceStep) { t.Steps = append(t.Steps, s) }

// String renders the trace one step per line, for logs and CLI output.
func (t *Trace) String() string {
	var b strings.Builder
	for i, s := range t.Steps {
		fmt.Fprintf(&b, "%d. %s [%s, %s]: %s", i+1, s.Rule, s.Kind, s.Mode, s.Effect)
		if s.TypeUnknown {
			b.WriteString(" (type unknown: type checks skipped)")
		}
		if s.Reason != "" {
			fmt.Fprintf(&b, ": %s", s.Reason)
		}
		if s.After != "" {
			fmt.Fprintf(&b, " -> %s", s.After)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// traceStep builds the step for a rule that matched.
func (r *rule) traceStep(v StageVerdict, before labels.Labels) TraceStep {
	st := TraceStep{
		Rule: r.name, Kind: r.kind, Mode: r.mode, InScope: true, Matched: true,
		TypeUnknown: v.TypeUnknown, Action: v.Action, Reason: v.Reason, Before: before.String(),
	}
	shadow := r.mode == ModeShadow
	switch v.Action {
	case ActionDrop:
		st.Effect = pick(shadow, EffectWouldDrop, EffectDropped)
	case ActionRewrite:
		st.Effect = pick(shadow, EffectWouldRewr, EffectRewritten)
		st.After = v.Labels.String()
	case ActionTag:
		st.Effect = pick(shadow, EffectWouldTag, EffectTagged)
		st.After = v.Labels.String()
	default:
		st.Effect = pick(shadow, EffectWouldWarn, EffectWarned)
	}
	return st
}

func pick(shadow bool, ifShadow, otherwise Effect) Effect {
	if shadow {
		return ifShadow
	}
	return otherwise
}
