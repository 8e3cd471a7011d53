package prefetch

import (
	"testing"
	"unsafe"
)

func TestLine(t *testing.T) {
	buf := make([]uint64, 1024)
	for i := range buf {
		Line(uintptr(unsafe.Pointer(&buf[i])))
	}
	Line(0) // a prefetch never faults, even of an unmapped address
}
