// Package gctune bounds how far the Go heap may grow between two
// collections once it is large.
//
// The Go collector's default target (GOGC=100) lets the heap grow to twice
// what the last collection found live. That is cheap for the small heaps
// of a distributor or of an ingester tracking few series, and costly for
// an ingester whose per-series state (exact series sets, sketches) is most
// of its memory: at one million active series it peaked near twice its
// live heap. The Tuner keeps GOGC and adds a soft memory limit that, after
// every collection, is reset to the runtime's other memory plus the live
// heap plus a headroom of max(min headroom, ratio × live). The effective
// target is the lower of the two, so:
//
//   - a heap whose live part is below the minimum headroom (32 MiB by
//     default) is governed by GOGC as before: no extra collections, no
//     extra CPU;
//   - a large heap grows by at most the headroom (25 % by default) before
//     the next collection, at the price of more frequent collections whose
//     cost is mostly marking the (largely pointer-free) live state.
//
// Because the limit follows the live heap after each cycle, it never
// drives the collector into back-to-back cycles: it always leaves at least
// the minimum headroom to allocate into. An operator's own GOGC or
// GOMEMLIMIT environment variable wins; the Tuner then stays off.
package gctune
