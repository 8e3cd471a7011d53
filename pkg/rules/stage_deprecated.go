package rules

import (
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// The deprecated kind is the worked example of docs/stages.md: a rule kind
// in a file of its own, registered in NewRegistry. It flags metrics whose
// name starts with a deprecated prefix; the rule's action (drop, tag or
// warn) applies to them.
//
//	rules:
//	  - name: no-old-client
//	    action: drop
//	    deprecated: {prefixes: [old_client_], use: new_client_*}

// deprecatedChecker is the kind's check; action-based kinds share
// checkStage, which applies the rule's action to a violation.
type deprecatedChecker struct {
	prefixes []string
	use      string
}

func newDeprecatedStage(rc *RuleConfig, env StageEnv) (Stage, error) {
	d := rc.Deprecated
	return newCheckStage(rc, env, deprecatedChecker{prefixes: d.Prefixes, use: d.Use}), nil
}

func (c deprecatedChecker) check(ls labels.Labels, _ *Metadata) (string, bool) {
	name := ls.Get(model.MetricNameLabel)
	for _, p := range c.prefixes {
		if strings.HasPrefix(name, p) {
			reason := "metric " + name + " is deprecated (prefix " + p + ")"
			if c.use != "" {
				reason += "; use " + c.use
			}
			return reason, false
		}
	}
	return "", false
}

// fix is never called: validation refuses action rewrite for this kind.
func (deprecatedChecker) fix(*labels.Builder, labels.Labels, *Metadata) {}
