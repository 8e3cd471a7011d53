// Package prefetch asks the CPU to start loading a cache line that will be
// read soon, so that the cache misses of several independent lookups (one
// hash-table probe per series of a batch) overlap instead of stalling one
// after the other.
//
// A prefetch is a hint: it never faults, reads nothing the Go memory model
// sees (so it is no data race, whatever writes the line concurrently) and
// is a no-op on architectures without an implementation here.
package prefetch
