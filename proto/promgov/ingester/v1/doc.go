// Package ingesterv1 is the generated code of the distributor → ingester
// Push API (ingester.proto): a Remote Write 2.0 request per batch, a symbol
// table local to it, and the written counts in the answer. Regenerate with
// `make proto`; do not edit the .pb.go files.
package ingesterv1
