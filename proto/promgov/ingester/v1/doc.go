// Package ingesterv1 is the generated code of the node-to-node API:
//
//   - IngesterService (ingester.proto), the data service: Push carries one
//     tenant's batch in pkg/record's form to the ingester that owns it and
//     answers the written and refused counts.
//   - ClusterService (cluster.proto), everything else nodes ask each
//     other, in typed messages: the cardinality rows and query statistics
//     distributors merge, RecordAccess, peer sketch sync and ring-change
//     handoff.
//
// codec.go (hand-written) is the gRPC codec both sides use so that a
// Push's batch is never copied into or out of the messages. Regenerate
// with `make proto`; do not edit the .pb.go files.
package ingesterv1
