// Package rules is promgov's governance rules engine.
//
// A ruleset is an ordered list of rules, each of one kind:
//
//   - relabel: Prometheus relabel_configs, evaluated by
//     github.com/prometheus/prometheus/model/relabel with identical semantics;
//   - naming: standards on metric names (character set, snake_case, required
//     prefixes, type and unit suffixes, discouraged units);
//   - labels: required, forbidden and allowed label names and label value
//     normalisation (regex replace, lower-casing, trimming, maximum length,
//     built-in normalisers for ids that explode cardinality);
//   - limits: maximum label count, label name length and value length;
//   - plugin: a WebAssembly module (pkg/plugin) whose verdict per series is
//     the rule's action, run in a sandbox with a memory limit and a
//     deadline, its on_error verdict taken when it fails;
//   - deprecated: metric names with deprecated prefixes (the worked example
//     of a kind added to the registry, docs/stages.md).
//
// Each rule compiles into a Stage (stage.go), the one interface every kind
// implements; NewRegistry lists the kinds a configuration may name. The
// engine applies scopes, modes, counters, traces and caches around the
// stages the same way for every kind.
//
// Every rule has a mode (enforce or shadow), an optional scope (tenants and a
// series selector) and, for the non-relabel kinds, an action (drop, rewrite,
// tag or warn) taken when a series violates it.
//
// Compile turns a Config into an immutable Engine whose Apply method is
// called by the distributor for every series before it is hashed onto the
// ring. Apply does not allocate for series that no rule touches, and
// answers cheaply for them: allocation-free pre-checks per rule, a
// per-metric-name cache for rules that read only the name, a memo for
// backtracking regexes, and a bounded cache of series no rule acted on
// (re-sent series skip the rules). None changes an outcome or a metric;
// TestFastPathsKeepSemantics and TestFastPathsKeepMetrics prove it. A Manager
// holds the active Engine behind an atomic pointer and swaps it on Reload,
// keeping the previous engine when the new configuration is invalid.
// TestHandler and RulesHandler expose the "why was my series dropped" API and
// the active ruleset; RunTests runs YAML rule unit tests for CI.
package rules
