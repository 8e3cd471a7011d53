package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/govsync"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

// distributorGovernance applies a governance version on a distributor:
// its rules (under this node's rules_* settings) and its drop_unused
// policy, both or neither; and shows its aggregation rules, when it
// versions them, in the rules test API.
func distributorGovernance(cfg *distributorconfig.Config, rulesMgr *rules.Manager, usageMgr *usage.Manager,
	aggRules *aggregate.Describer, logger *slog.Logger) govsync.ApplyFunc {
	return func(doc govstore.Document) error {
		if err := doc.Usage.DropUnused.Validate(); err != nil {
			return fmt.Errorf("usage.drop_unused: %w", err)
		}
		rc := cfg.Rules
		rc.Rules = doc.Rules
		if err := rulesMgr.Reload(withUsageDrop(rc, doc.Usage.DropUnused)); err != nil {
			return err
		}
		if err := usageMgr.Policy().SetConfig(doc.Usage.DropUnused); err != nil {
			return err
		}
		if doc.Aggregations != nil {
			setAggregations(aggRules, *doc.Aggregations, logger)
		}
		return nil
	}
}

// withUsageDrop returns rc with usage.drop_unused as its last rule when the
// policy is in shadow or enforce mode: a rule of kind unused, named
// rules.UsageDropRuleName, that drops (or, in shadow mode, counts) the
// series of metrics the usage analysis selects, on their final name.
func withUsageDrop(rc rules.Config, d usage.DropConfig) rules.Config {
	if d.Mode != usage.ModeShadow && d.Mode != usage.ModeEnforce {
		return rc
	}
	mode := rules.ModeEnforce
	if d.Mode == usage.ModeShadow {
		mode = rules.ModeShadow
	}
	rc.Rules = append(slices.Clip(rc.Rules), rules.RuleConfig{Name: rules.UsageDropRuleName, Mode: mode, Action: rules.ActionDrop, Unused: &rules.UnusedConfig{}})
	return rc
}
