package rules

import (
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/stage"
)

// The stage interface lives in pkg/stage, a leaf package, so that any
// package can implement it without importing this engine (pkg/aggregate's
// consumers do). These are its names here.
type (
	// Stage is stage.Stage: the work of one rule on one series.
	Stage = stage.Stage
	// BatchStage is stage.BatchStage: a Stage that can decide for a batch.
	// The engine's batch entry points (Engine.ApplyBatch,
	// ApplyBatchRecorded) walk a batch rule by rule and, for a rule whose
	// stage is a BatchStage, call EvalBatch once with the batch's series
	// that the rule applies to (in scope, not skipped by the engine's
	// pre-checks), each as left by the rules before it; every other path
	// (Apply, traces, stages without the capability) calls Eval one series
	// at a time.
	BatchStage = stage.BatchStage
	// StageInput is stage.Input: one series as a stage sees it.
	StageInput = stage.Input
	// StageVerdict is stage.Verdict: what a stage does to a series.
	StageVerdict = stage.Verdict
)

// StageKind is one kind of rule: its name as configured and how to build a
// rule's Stage from its configuration.
type StageKind struct {
	// Name is the kind as shown in traces and GET /promgov/api/v1/rules;
	// RuleConfig.Kind returns it for the rules that select it.
	Name string
	// New builds the stage of rule rc.
	New func(rc *RuleConfig, env StageEnv) (Stage, error)
	// Actions lists the actions the kind's rules can take given rc, so that
	// their counters are exported from the start (at zero).
	Actions func(rc *RuleConfig) []Action
}

// StageEnv is what a StageKind's New may use.
type StageEnv struct {
	// Scheme is the configured name validation scheme.
	Scheme model.ValidationScheme
	// TagLabel is the label the rule's tag action sets (its tag_label or
	// rules_tag_label).
	TagLabel string
	// Usage is the usage analysis' answer for the unused kind; nil where
	// none runs (the kind then fails to compile).
	Usage UsagePolicy

	plugins pluginLoader
}

// Registry maps kind names to StageKinds: the one place where the kinds a
// configuration may name are listed. It is a value built by NewRegistry,
// not process state; it is read-only once compiling starts.
type Registry struct {
	kinds map[string]StageKind
}

// NewRegistry returns a registry of the built-in kinds. To compile in a
// new kind: implement Stage in a file or package of its own, give its
// configuration a field in ruleconfig.RuleConfig (and a line in
// RuleConfig.Kind and its validation), and add its StageKind here
// (docs/stages.md walks through the deprecated kind as the example).
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]StageKind{}}
	for _, k := range []StageKind{
		{Name: KindRelabel, New: newRelabelStage, Actions: fixedActions(ActionDrop, ActionRewrite)},
		{Name: KindNaming, New: newNamingStage, Actions: ruleAction},
		{Name: KindLabels, New: newLabelsStage, Actions: ruleAction},
		{Name: KindLimits, New: newLimitsStage, Actions: ruleAction},
		{Name: KindDeprecated, New: newDeprecatedStage, Actions: ruleAction},
		{Name: KindUnused, New: newUnusedStage, Actions: ruleAction},
		{Name: KindPlugin, New: newPluginStage, Actions: fixedActions(ActionDrop, ActionRewrite, ActionTag)},
	} {
		if err := r.Register(k); err != nil {
			panic(err) // unreachable: the built-in names are distinct
		}
	}
	return r
}

// Register adds a kind; a name already registered is an error.
func (r *Registry) Register(k StageKind) error {
	if k.Name == "" || k.New == nil || k.Actions == nil {
		return fmt.Errorf("stage kind %q: Name, New and Actions are required", k.Name)
	}
	if _, ok := r.kinds[k.Name]; ok {
		return fmt.Errorf("stage kind %q is already registered", k.Name)
	}
	r.kinds[k.Name] = k
	return nil
}

// Kind returns the kind registered as name.
func (r *Registry) Kind(name string) (StageKind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

func fixedActions(as ...Action) func(*RuleConfig) []Action {
	return func(*RuleConfig) []Action { return as }
}

// ruleAction is the Actions of the kinds whose rules configure one action.
func ruleAction(rc *RuleConfig) []Action { return []Action{rc.Action} }

// checker is the part of an action-based kind (naming, labels, limits,
// deprecated) that differs: whether a series violates the rule, and how
// to fix it for action rewrite (only called for kinds whose validation
// allows rewrite).
type checker interface {
	check(ls labels.Labels, md *Metadata) (reason string, typeUnknown bool)
	fix(lb *labels.Builder, ls labels.Labels, md *Metadata)
}

// checkStage is the Stage of an action-based kind: a violation gets the
// rule's action (drop, rewrite, tag or warn).
type checkStage struct {
	name, tagLabel string
	action         Action
	c              checker
}

func newCheckStage(rc *RuleConfig, env StageEnv, c checker) *checkStage {
	return &checkStage{name: rc.Name, tagLabel: env.TagLabel, action: rc.Action, c: c}
}

func (s *checkStage) Eval(in *StageInput) StageVerdict {
	reason, typeUnknown := s.c.check(in.Labels, &in.Meta)
	if reason == "" {
		return StageVerdict{TypeUnknown: typeUnknown}
	}
	v := StageVerdict{Action: s.action, Reason: reason, TypeUnknown: typeUnknown}
	if !in.WantLabels {
		return v
	}
	switch s.action {
	case ActionTag:
		if in.Labels.Get(s.tagLabel) == s.name {
			// Already tagged by this rule: nothing would change.
			v.Labels = in.Labels
			break
		}
		in.Builder.Reset(in.Labels)
		in.Builder.Set(s.tagLabel, s.name)
		v.Labels = in.Builder.Labels()
	case ActionRewrite:
		in.Builder.Reset(in.Labels)
		s.c.fix(in.Builder, in.Labels, &in.Meta)
		v.Labels = in.Builder.Labels()
	}
	return v
}

// The built-in action-based kinds as checkers.
type (
	namingChecker struct{ *namingRule }
	labelsChecker struct{ *labelsRule }
	limitsChecker struct{ *limitsRule }
)

func (c namingChecker) check(ls labels.Labels, md *Metadata) (string, bool) {
	return c.namingRule.check(ls, md)
}
func (c namingChecker) fix(lb *labels.Builder, ls labels.Labels, md *Metadata) {
	c.namingRule.fix(lb, ls, md)
}
func (c labelsChecker) check(ls labels.Labels, _ *Metadata) (string, bool) {
	return c.labelsRule.check(ls), false
}
func (c labelsChecker) fix(lb *labels.Builder, _ labels.Labels, _ *Metadata) { c.labelsRule.fix(lb) }
func (c limitsChecker) check(ls labels.Labels, _ *Metadata) (string, bool) {
	return c.limitsRule.check(ls), false
}
func (c limitsChecker) fix(lb *labels.Builder, _ labels.Labels, _ *Metadata) { c.limitsRule.fix(lb) }

func newNamingStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	return newCheckStage(rc, env, namingChecker{compileNaming(rc.Naming)}), nil
}

func newLabelsStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	l, err := compileLabels(rc.Labels)
	if err != nil {
		return nil, err
	}
	return newCheckStage(rc, env, labelsChecker{l}), nil
}

func newLimitsStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	return newCheckStage(rc, env, limitsChecker{compileLimits(rc.Limits)}), nil
}

// relabelStage runs a rule's relabel_configs (see evalRelabel).
type relabelStage struct{ steps []relabelStep }

func newRelabelStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	steps, err := compileRelabel(rc.RelabelConfigs, env.Scheme)
	if err != nil {
		return nil, err
	}
	return &relabelStage{steps: steps}, nil
}

func (s *relabelStage) Eval(in *StageInput) StageVerdict {
	// Called from outside the engine (a test through the registry; the
	// engine calls evalRelabel with its own scratch, see rule.eval): give
	// the relabel steps a scratch that views in.Labels.
	sc := newScratch()
	sc.view.reset(in.Labels)
	return evalRelabel(s.steps, in.Labels, sc)
}

func newPluginStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	if env.plugins == nil {
		return nil, fmt.Errorf("plugin %q: no plugin loader (compile rules with Compile or a Manager)", rc.Name)
	}
	p, err := env.plugins.load(rc.Name, *rc.Plugin)
	if err != nil {
		return nil, err
	}
	return newPluginRule(p, rc.Name, env.TagLabel), nil
}
