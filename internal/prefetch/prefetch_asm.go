//go:build amd64 || arm64

package prefetch

// Line starts loading the cache line holding addr. addr is a uintptr so
// that a stale address (of memory the caller no longer owns) is harmless.
//
//go:noescape
func Line(addr uintptr)
