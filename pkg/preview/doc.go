// Package preview computes the impact preview of a candidate governance
// configuration on live traffic (POST /promgov/api/v1/config/preview, docs/governance.md):
//
//   - on each ingester (Ingester, behind ClusterService.PreviewConfig) the
//     candidate's rules run over the reservoir's sample of every metric the
//     ingester owns (pkg/reservoir), with traces; what they do to the
//     sample is scaled to the metric's series count (the cardinality
//     tracker's HyperLogLog estimate) and samples/s;
//   - on the distributor asked (Handler) the answers of every ingester are
//     merged (each metric has one owner, so rows are disjoint) and the
//     candidate's cardinality limits are applied to the merged series
//     counts after the rules.
package preview
