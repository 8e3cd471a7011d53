// Package ingesterv1 is the generated code of the distributor → ingester
// API (ingester.proto): a series batch per Push (pkg/record's form) and the
// written counts in the answer, plus the cluster RPCs. Regenerate with
// `make proto`; do not edit the .pb.go files. codec.go (hand-written) is
// the gRPC codec both sides use so that a Push's batch is never copied
// into or out of the messages.
package ingesterv1
