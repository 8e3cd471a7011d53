// Package abi is the wire format shared by promgov's WebAssembly plugin host
// (package plugin) and guest SDK (package plugin/sdk): the ABI version, the
// names of the exports a plugin provides, the codes of metric types and
// actions, and a strict reader and an appending writer for the byte layouts
// of a batch of series (host to guest) and of the verdicts (guest to host).
// docs/plugins.md is the specification; this package is its code.
//
// It depends on the standard library only, so that a plugin built with
// GOOS=wasip1 stays small. Every function is pure and safe for concurrent
// use; a Reader is used by one goroutine at a time.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the ABI version this code speaks. A plugin's
// promgov_abi_version export must return it; any change to the byte layouts
// or the exports' signatures increments it.
const Version = 1

// The exports a plugin module provides (see docs/plugins.md).
const (
	// ExportVersion: () -> i32, the ABI version the plugin was built for.
	ExportVersion = "promgov_abi_version"
	// ExportAlloc: (size i32) -> i32, a guest-owned buffer of at least
	// size bytes for the host to write into. It stays valid, and the
	// guest does not write to it, until the next promgov_alloc: the host
	// reuses it for every input that fits.
	ExportAlloc = "promgov_alloc"
	// ExportInit: (ptr, len i32) -> i64, called once per instance with the
	// plugin configuration; 0 on success, else ptr<<32|len of a UTF-8
	// error message.
	ExportInit = "promgov_init"
	// ExportEvaluate: (ptr, len i32) -> i64, evaluates the batch at
	// ptr..ptr+len and returns ptr<<32|len of its verdicts, a guest-owned
	// buffer valid until the next call of any export.
	ExportEvaluate = "promgov_evaluate"
)

// Action is what a plugin decides for a series.
type Action uint8

// The actions, as encoded on the wire.
const (
	ActionKeep    Action = 0 // forward the series unchanged
	ActionDrop    Action = 1 // drop the series
	ActionRewrite Action = 2 // replace the series' labels with the verdict's labels
	ActionTag     Action = 3 // add (or overwrite) the verdict's labels
	maxAction            = ActionTag
)

// String returns the action's configuration name.
func (a Action) String() string {
	switch a {
	case ActionKeep:
		return "keep"
	case ActionDrop:
		return "drop"
	case ActionRewrite:
		return "rewrite"
	case ActionTag:
		return "tag"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Valid reports whether a is a defined action.
func (a Action) Valid() bool { return a <= maxAction }

// Metric type codes, in the order of Prometheus' model.MetricType values.
const (
	TypeUnknown        uint8 = 0
	TypeCounter        uint8 = 1
	TypeGauge          uint8 = 2
	TypeHistogram      uint8 = 3
	TypeGaugeHistogram uint8 = 4
	TypeSummary        uint8 = 5
	TypeInfo           uint8 = 6
	TypeStateset       uint8 = 7
	maxType                  = TypeStateset
)

// ValidType reports whether t is a defined type code.
func ValidType(t uint8) bool { return t <= maxType }

// TypeName returns Prometheus' name for a type code ("unknown" for codes
// out of range).
func TypeName(code uint8) string {
	switch code {
	case TypeCounter:
		return "counter"
	case TypeGauge:
		return "gauge"
	case TypeHistogram:
		return "histogram"
	case TypeGaugeHistogram:
		return "gaugehistogram"
	case TypeSummary:
		return "summary"
	case TypeInfo:
		return "info"
	case TypeStateset:
		return "stateset"
	}
	return "unknown"
}

// TypeCode returns the code of a Prometheus metric type name; unknown names
// (and "") are TypeUnknown.
func TypeCode(name string) uint8 {
	for c := TypeCounter; c <= maxType; c++ {
		if TypeName(c) == name {
			return c
		}
	}
	return TypeUnknown
}

// Limits on what a decoder accepts. They bound what a hostile peer can make
// the other side allocate, far above what a real series needs.
const (
	MaxLabels    = 1024    // labels of one series or verdict
	MaxStringLen = 1 << 16 // bytes of one name, value, tenant or reason
	MaxBatch     = 1 << 20 // series in one batch
)

// ErrShort is wrapped by a Reader's errors when the input ends early.
var ErrShort = errors.New("input ends early")

// Reader decodes the ABI's primitives strictly from a byte slice: every read
// is bounds-checked and strings must be valid UTF-8 within MaxStringLen. The
// first error sticks: later reads return zero values and Err returns it.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Reset makes r read b from its start, clearing any error.
func (r *Reader) Reset(b []byte) { *r = Reader{buf: b} }

// Err returns the first error, wrapped with the offset it occurred at.
func (r *Reader) Err() error { return r.err }

// Offset is the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

// Remaining is the number of bytes not yet consumed.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

func (r *Reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %w", r.off, fmt.Errorf(format, args...))
	}
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if r.err != nil {
		return 0
	}
	if r.off+1 > len(r.buf) {
		r.fail("%w: want 1 byte", ErrShort)
		return 0
	}
	v := r.buf[r.off]
	r.off++
	return v
}

// U32 reads a little-endian uint32.
func (r *Reader) U32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.buf)-r.off < 4 {
		r.fail("%w: want 4 bytes, have %d", ErrShort, len(r.buf)-r.off)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.buf[r.off:])
	r.off += 4
	return v
}

// Count reads a u32 count and checks it against max and against the bytes
// left, given that each element takes at least minSize bytes.
func (r *Reader) Count(what string, max, minSize int) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.fail("%s count %d is over the limit of %d", what, n, max)
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(r.Remaining()) {
		r.fail("%w: %d %s need at least %d bytes, %d left", ErrShort, n, what, uint64(n)*uint64(minSize), r.Remaining())
		return 0
	}
	return int(n)
}

// Bytes reads a u32 length and that many bytes, aliasing the input.
func (r *Reader) Bytes() []byte {
	n := r.U32()
	if r.err != nil {
		return nil
	}
	if n > MaxStringLen {
		r.fail("string of %d bytes is over the limit of %d", n, MaxStringLen)
		return nil
	}
	if uint64(n) > uint64(r.Remaining()) {
		r.fail("%w: string of %d bytes, %d left", ErrShort, n, r.Remaining())
		return nil
	}
	b := r.buf[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	if !utf8.Valid(b) {
		r.off -= int(n)
		r.fail("string is not valid UTF-8")
		return nil
	}
	return b
}

// String reads a string (a copy).
func (r *Reader) String() string { return string(r.Bytes()) }

// End fails unless every byte was consumed.
func (r *Reader) End() {
	if r.err == nil && r.off != len(r.buf) {
		r.fail("%d trailing bytes", len(r.buf)-r.off)
	}
}

// AppendU32 appends v little-endian.
func AppendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// AppendString appends a u32 length and s.
func AppendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Pack returns ptr<<32|len, the i64 an export returns for a buffer.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits an i64 returned by an export into ptr and len.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
