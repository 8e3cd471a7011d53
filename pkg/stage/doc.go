// Package stage defines the one interface every piece of per-series
// governance work implements: a Stage sees a series with its tenant and
// metadata and returns a Verdict (nothing, drop, rewrite, tag, warn, or
// aggregate) with a reason.
//
// Two engines run stages:
//
//   - pkg/rules, on the distributor: the rules of the governance
//     configuration (relabel, naming, labels, limits, deprecated, unused,
//     plugin, and kinds registered with rules.Registry). It applies scopes
//     and modes, counts verdicts per rule, traces them and caches outcomes
//     per series.
//   - pkg/aggregate, on the ingester, where every series of a metric
//     arrives: the aggregation rules and the cardinality overflow, which are
//     Consumers. Their verdict takes the series' samples into interval state
//     instead of (or as well as) letting the series through.
//
// The package is a leaf: it depends on no other promgov package but
// pkg/record (the encoded series a Consumer reads), so that any package may
// implement a Stage without importing an engine. docs/stages.md has the
// whole picture and a worked example.
package stage
