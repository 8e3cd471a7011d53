// Package cardinality tracks series cardinality on an ingester, enforces
// cardinality limits on the ingester hot path and answers the cardinality
// analytics API.
//
// The distributor hashes series by (tenant, metric name), so each metric has
// exactly one owning ingester and its Tracker counts it locally. Tenant totals
// are the union of every ingester's HyperLogLog sketch. They are never a sum.
//
// The pieces and how they are wired:
//
//   - Tracker (New, Run, Close) lives in the ingester. Observe decides per
//     series of a batch. The ingester drops refused series from the batch,
//     writes the rest and counts the refusals in PushResponse.refused_series
//     with the first Decision.Message; the distributor answers 400 with it
//     (a refusal is not a gRPC error: the rest of the batch was written).
//   - Tenant sketches go to peers: TenantSketches on the sender,
//     MergePeerSketch on the receiver, ForgetPeer when a peer leaves.
//     max_series_per_tenant is enforced cluster-wide from them.
//   - After a ring change the new owner pulls each moved metric's state:
//     ExportMetric on the old owner, ImportMetric on the new one, wrapped in
//     BeginTransfer.
//   - NewHandler serves the analytics API from a Source. The Source is a
//     Tracker on an ingester, or a distributor fan-out (cluster.FanOut) that
//     asks every ingester's cluster service with sketches and combines the
//     answers with MergeMetrics and MergeTenants.
//
// See docs/cardinality.md for the window model, memory figures, the
// peer-sync overshoot bound and why refused series answer 400.
package cardinality
