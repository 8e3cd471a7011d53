//go:build wasip1

package sdk

import (
	"errors"
	"unsafe"

	"github.com/promgov/promgov/pkg/plugin/abi"
)

// The buffers shared with the host: in is what promgov_alloc hands out (the
// host writes the configuration or a batch into it), out holds the last
// verdicts or error message. Both are reused, so their contents are valid
// until the next call of any export, as the ABI says. slab backs the
// Series' Labels, reused from batch to batch.
var (
	in, out []byte
	slab    []Label
)

// bufPtr is the guest address of b's first byte.
func bufPtr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

//go:wasmexport promgov_abi_version
func exportABIVersion() uint32 { return abi.Version }

//go:wasmexport promgov_alloc
func exportAlloc(size uint32) uint32 {
	if cap(in) < int(size) || cap(in) == 0 {
		in = make([]byte, max(int(size), 64))
	}
	in = in[:size]
	return bufPtr(in)
}

// input returns the host's bytes at ptr..ptr+n, which must be the buffer
// promgov_alloc returned.
func input(ptr, n uint32) []byte {
	if ptr != bufPtr(in) || int(n) > cap(in) {
		panic("promgov sdk: the host passed a buffer promgov_alloc did not return")
	}
	return in[:n]
}

// message returns ptr<<32|len of msg in out (never 0 for a non-empty msg).
func message(msg string) uint64 {
	if msg == "" {
		msg = "error"
	}
	out = append(out[:0], msg...)
	return abi.Pack(bufPtr(out), uint32(len(out)))
}

//go:wasmexport promgov_init
func exportInit(ptr, n uint32) uint64 {
	if err := configure(input(ptr, n)); err != nil {
		return message(err.Error())
	}
	return 0
}

//go:wasmexport promgov_evaluate
func exportEvaluate(ptr, n uint32) uint64 {
	if registered == nil {
		panic(errNotRegistered.Error())
	}
	var err error
	out, err = evaluateBatch(input(ptr, n), registered.evaluate, out[:0], &slab)
	if err != nil {
		panic("promgov sdk: " + err.Error())
	}
	return abi.Pack(bufPtr(out), uint32(len(out)))
}

// errNotRegistered is init's answer when no plugin registered.
var errNotRegistered = errors.New("no plugin registered: call sdk.Register from an init function of the main package")

// configure runs the registered configure function on a copy of config.
func configure(config []byte) error {
	if registered == nil {
		return errNotRegistered
	}
	if registered.configure == nil {
		return nil
	}
	return registered.configure(append([]byte(nil), config...))
}
