package main

import (
	"fmt"
	"log/slog"

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
		if err := rulesMgr.Reload(rc); err != nil {
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
