// Package aggregate is exact streaming aggregation on the ingester that owns
// a metric: series matching an aggregation rule are folded, per interval,
// into fewer output series (by or without labels) before the write-ahead
// log, and the outputs are appended to the WAL when their interval closes.
//
// Every series of a (tenant, metric) is placed on one ingester, so the owner
// sees the whole metric and its outputs are exact, with no second tier:
//
//   - counters (and the _bucket, _sum and _count series of classic
//     histograms and summaries, and native histogram counters) become one
//     summed counter per group that stays monotonic across input resets,
//     series churn, restarts and ring moves: each input contributes the
//     increase between its consecutive samples;
//   - gauges become sum, min, max, avg, count (over the last value of each
//     input series in the interval) and last;
//   - summary quantiles cannot be aggregated and are dropped, counted.
//
// Each rule, and the overflow aggregation, is a stage.Consumer (pkg/stage,
// docs/stages.md): it decides per series like every governance stage and
// folds the samples of the series it takes. The Engine runs them (routing,
// decoding once, modes) and holds their state; Service drives it (closing intervals,
// appending outputs to the WAL, snapshotting). See docs/aggregation.md.
package aggregate
