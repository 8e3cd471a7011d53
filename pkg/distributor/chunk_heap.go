//go:build !unix

package distributor

// mapChunk allocates a chunk on the Go heap where anonymous memory maps
// are not available.
func mapChunk() *[cacheChunkSize]byte { return new([cacheChunkSize]byte) }

// unmapChunk leaves a heap chunk to the collector.
func unmapChunk(*[cacheChunkSize]byte) {}
