package rules

import (
	"errors"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// The unused kind is the usage drop policy as a rule: its stage asks the
// usage analysis whether a series' metric is used by any dashboard, alert
// or query, and the rule's action (drop, tag or warn) applies to the
// unused ones. The distributor appends one such rule, named
// UsageDropRuleName, after the configured rules when usage.drop_unused is
// in shadow or enforce mode, so the policy gets the engine's shadow mode,
// scopes, counters, traces and caches like every kind.
//
//	rules:
//	  - name: tag-unused
//	    action: tag
//	    unused: {}

// UsageDropRuleName is the name of the rule the distributor appends for
// usage.drop_unused.
const UsageDropRuleName = "usage.drop_unused"

// UsagePolicy is what the unused kind asks: whether a metric is unused
// now, and a generation that changes whenever that answer may have
// changed for some metric. usage.Policy implements it.
//
// Concurrency: called from every write concurrently; both methods must be
// cheap and lock-free. Generation must change only after the new answers
// are visible to Unused.
type UsagePolicy interface {
	Unused(metric string) bool
	Generation() uint64
}

// LiveStage is a Stage whose verdicts follow state that changes between
// reloads (the unused kind follows the usage analysis). The engine and the
// distributor's series cache remember outcomes per series only within one
// Generation: when it changes, what they remembered is forgotten.
type LiveStage interface {
	Stage
	// Generation changes whenever some verdict may have changed.
	Generation() uint64
}

// errNoUsagePolicy is an unused rule compiled where no usage analysis runs.
var errNoUsagePolicy = errors.New("rules of kind unused need the usage analysis of a distributor (usage.sources); none runs here")

// unusedStage is the stage of an unused rule.
type unusedStage struct {
	*checkStage
	p UsagePolicy
}

func newUnusedStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	if env.Usage == nil {
		return nil, errNoUsagePolicy
	}
	return &unusedStage{checkStage: newCheckStage(rc, env, unusedChecker{env.Usage}), p: env.Usage}, nil
}

// Generation implements LiveStage.
func (s *unusedStage) Generation() uint64 { return s.p.Generation() }

type unusedChecker struct{ p UsagePolicy }

func (c unusedChecker) check(ls labels.Labels, _ *Metadata) (string, bool) {
	name := ls.Get(model.MetricNameLabel)
	if !c.p.Unused(name) {
		return "", false
	}
	return "metric " + name + " is used by no dashboard, alert or query (usage analysis)", false
}

// fix is never called: validation refuses action rewrite for this kind.
func (unusedChecker) fix(*labels.Builder, labels.Labels, *Metadata) {}
