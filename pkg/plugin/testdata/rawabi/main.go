// Command rawabi implements the plugin ABI by hand, without the SDK, to send
// the host what the SDK never would. Its ABI version is set with
// -ldflags=-X=main.version=N; its configuration picks the output of
// evaluate: "garbage", "count", "range", "action", "utf8", "dup", "keep-labels",
// "empty-value", "trailing", "huge-count", or well-formed keeps otherwise.
// An instance's first evaluate (the host's self-test, or the first batch
// of a fresh instance) is well-formed unless the mode ends with "-load".
package main

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unsafe"
)

var (
	version = "1"
	mode    string
	calls   int
	in, out []byte
)

func ptr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func pack(b []byte) uint64 { return uint64(ptr(b))<<32 | uint64(len(b)) }

//go:wasmexport promgov_abi_version
func abiVersion() uint32 {
	v, _ := strconv.Atoi(version)
	return uint32(v)
}

//go:wasmexport promgov_alloc
func alloc(n uint32) uint32 {
	if cap(in) < int(n) || cap(in) == 0 {
		in = make([]byte, max(n, 64))
	}
	in = in[:n]
	return ptr(in)
}

//go:wasmexport promgov_init
func initialize(_, n uint32) uint64 {
	mode = string(in[:n])
	return 0
}

func str(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

//go:wasmexport promgov_evaluate
func evaluate(_, n uint32) uint64 {
	count := binary.LittleEndian.Uint32(in[:4])
	out = out[:0]
	calls++
	mode := mode
	if m, ok := strings.CutSuffix(mode, "-load"); ok {
		mode = m
	} else if calls == 1 {
		mode = ""
	}
	switch mode {
	case "garbage":
		out = append(out, "\xde\xad\xbe\xef this is not a verdict"...)
		return pack(out)
	case "range":
		return uint64(0xfffffff0)<<32 | 64
	case "count":
		count++
	case "huge-count":
		out = binary.LittleEndian.AppendUint32(out, 0xffffffff)
		return pack(out)
	}
	out = binary.LittleEndian.AppendUint32(out, count)
	for range count {
		switch mode {
		case "action":
			out = append(out, 9)
			out = str(out, "")
			out = binary.LittleEndian.AppendUint32(out, 0)
		case "utf8":
			out = append(out, 3)
			out = str(out, "")
			out = binary.LittleEndian.AppendUint32(out, 1)
			out = str(out, "team")
			out = str(out, "\xff\xfe")
		case "dup":
			out = append(out, 3)
			out = str(out, "")
			out = binary.LittleEndian.AppendUint32(out, 2)
			out = str(str(out, "team"), "a")
			out = str(str(out, "team"), "b")
		case "keep-labels":
			out = append(out, 0)
			out = str(out, "")
			out = binary.LittleEndian.AppendUint32(out, 1)
			out = str(str(out, "team"), "a")
		case "empty-value":
			out = append(out, 3)
			out = str(out, "")
			out = binary.LittleEndian.AppendUint32(out, 1)
			out = str(str(out, "team"), "")
		default:
			out = append(out, 0)
			out = str(out, "fine")
			out = binary.LittleEndian.AppendUint32(out, 0)
		}
	}
	if mode == "trailing" {
		out = append(out, 0)
	}
	_ = n
	return pack(out)
}

func main() {}
