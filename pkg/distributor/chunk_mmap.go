//go:build unix

package distributor

import (
	"syscall"
	"unsafe"
)

// mapChunk maps an anonymous, private chunk of memory outside the Go
// heap; should the map fail (an address-space or map-count limit), the
// chunk comes from the heap instead.
func mapChunk() *[cacheChunkSize]byte {
	b, err := syscall.Mmap(-1, 0, cacheChunkSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return new([cacheChunkSize]byte)
	}
	return (*[cacheChunkSize]byte)(b)
}

// unmapChunk releases a chunk mapChunk mapped (one from the heap is left
// to the collector: munmap refuses an address it did not map).
func unmapChunk(c *[cacheChunkSize]byte) {
	_ = syscall.Munmap(unsafe.Slice(&c[0], cacheChunkSize))
}
