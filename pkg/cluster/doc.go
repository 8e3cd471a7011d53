// Package cluster runs the cluster-wide parts of cardinality governance on
// top of the ring and the ingesters' gRPC API:
//
//   - SketchSync (on every ingester) pulls every other ingester's tenant
//     sketches every few seconds and hands them to the local Tracker
//     (MergePeerSketch), so max_series_per_tenant is enforced against the
//     cluster-wide total; it forgets peers that left (ForgetPeer).
//   - Handoff (on every ingester) watches the placement: whenever it
//     changes, the ingester asks every other ingester for the metrics it
//     tracks in the partitions this ingester now owns, pulls each one with
//     ExportMetric and merges it (ImportMetric). The first pull runs inside
//     BeginTransfer, so enforcement fails open while state is in flight; a
//     second pull after a settle delay collects what distributors still sent
//     to the previous owner while the new placement spread.
//   - FanOut (on distributors) is a cardinality.Source that asks every
//     ingester through the cluster service (QueryMetrics, QueryTenants,
//     GetAccess) and merges the answers with
//     MergeMetrics and MergeTenants, so the distributor serves the
//     cluster-wide analytics API with cardinality.NewHandler.
//
// It also adapts the fan-out to the usage manager (Costs, AccessSource) and
// ships a distributor's query statistics to their owners (AccessShipper).
// Pool is the ingesters' internal/grpcpool for calls between them; the
// calls fan out with internal/fanout. See docs/cardinality.md.
package cluster
