package record

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// consumeField parses the next field of b and returns its number, wire
// type and total length (tag included), or n < 0 when b is malformed.
func consumeField(b []byte) (num protowire.Number, typ protowire.Type, n int) {
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 {
		return 0, 0, tn
	}
	vn := protowire.ConsumeFieldValue(num, typ, b[tn:])
	if vn < 0 {
		return 0, 0, vn
	}
	return num, typ, tn + vn
}

// consumeVarintValue reads the varint value of a whole field (tag included).
func consumeVarintValue(f []byte) (uint64, bool) {
	_, _, tn := protowire.ConsumeTag(f)
	if tn < 0 {
		return 0, false
	}
	v, n := protowire.ConsumeVarint(f[tn:])
	return v, n >= 0
}

// bytesValue returns the payload of a whole length-delimited field.
func bytesValue(f []byte) []byte {
	_, _, tn := protowire.ConsumeTag(f)
	if tn < 0 {
		return nil
	}
	v, n := protowire.ConsumeBytes(f[tn:])
	if n < 0 {
		return nil
	}
	return v
}

// appendBytesField appends a length-delimited field.
func appendBytesField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// appendStringField appends a length-delimited field holding s.
func appendStringField(dst []byte, num protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendDouble appends a double field unless it is +0 (proto3 default).
func appendDouble(dst []byte, num protowire.Number, v float64) []byte {
	bits := math.Float64bits(v)
	if bits == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.Fixed64Type)
	return binary.LittleEndian.AppendUint64(dst, bits)
}

// appendInt64 appends an int64 varint field unless it is 0.
func appendInt64(dst []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(v))
}

// appendUvarintField appends a varint field unless it is 0.
func appendUvarintField(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

// appendMessage appends a length-delimited field whose payload is built by
// fn, computing its length afterwards (the payload is moved once when the
// length needs more than one byte).
func appendMessage(dst []byte, num protowire.Number, fn func([]byte) []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	at := len(dst)
	dst = append(dst, 0) // one-byte length, fixed below
	dst = fn(dst)
	n := len(dst) - at - 1
	if n < 128 {
		dst[at] = byte(n)
		return dst
	}
	sz := protowire.SizeVarint(uint64(n))
	for range sz - 1 {
		dst = append(dst, 0)
	}
	copy(dst[at+sz:], dst[at+1:at+1+n])
	protowire.AppendVarint(dst[at:at], uint64(n))
	return dst
}
