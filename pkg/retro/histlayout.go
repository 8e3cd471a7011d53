package retro

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxChunkBuckets bounds the buckets (positive and negative together) a
// native histogram chunk read from a backend may declare. Real histograms
// have tens to a few hundred; schema 8 over the whole float64 range would
// need about half a million, which no instrumented code produces.
const maxChunkBuckets = 1 << 16

// histogramHeaderBytes is a native histogram chunk's header: the sample
// count (2 bytes, big-endian) and the counter-reset flags (1 byte). The
// bucket layout of the chunk's samples follows as a bit stream.
const histogramHeaderBytes = 3

// errShortLayout: the bit stream ended inside the layout.
var errShortLayout = errors.New("the bucket layout is cut short")

// checkHistogramLayout reads the bucket layout at the head of a native
// histogram chunk (integer or float: both share it) and refuses one that
// declares more buckets than the chunk can hold. chunkenc trusts the
// layout and allocates its bucket arrays from it before reading a single
// bucket, so a chunk of a few bytes declaring 2^32-bucket spans would make
// it allocate tens of gigabytes: a fatal out-of-memory that recover does
// not catch (FuzzAppendChunk found one). A genuine chunk writes every
// bucket of its first sample, each in at least one bit, so its buckets are
// at most the bits that follow the layout; maxChunkBuckets bounds them
// absolutely.
//
// The layout is: the zero threshold (one byte, or 0xff and 8 bytes), the
// schema (varbit int), the positive and the negative spans (each a varbit
// uint count, then per span a varbit uint length and a varbit int offset),
// and, for custom-bucket schemas, the bounds (skipped here: the spans
// come first and the bounds cost bits, so they cannot inflate anything).
func checkHistogramLayout(data []byte) error {
	buckets, left, err := histogramLayoutBuckets(data)
	if err != nil {
		return err
	}
	if buckets > left {
		return fmt.Errorf("the bucket layout declares %d buckets but only %d bits follow it", buckets, left)
	}
	return nil
}

// histogramLayoutBuckets reads the layout of a histogram chunk and returns
// how many buckets it declares and how many bits follow it; it stops with
// an error past maxChunkBuckets.
func histogramLayoutBuckets(data []byte) (buckets, left uint64, err error) {
	if len(data) < histogramHeaderBytes {
		return 0, 0, fmt.Errorf("chunk of %d bytes, shorter than its header", len(data))
	}
	if binary.BigEndian.Uint16(data) == 0 {
		return 0, 0, nil // no samples: chunkenc reads no layout
	}
	r := bitReader{b: data[histogramHeaderBytes:]}
	zt, err := r.bits(8)
	if err != nil {
		return 0, 0, err
	}
	if zt == 0xff {
		if _, err := r.bits(64); err != nil {
			return 0, 0, err
		}
	}
	if _, err := r.varbit(); err != nil { // the schema
		return 0, 0, err
	}
	for range 2 { // positive, then negative spans
		n, err := r.varbit()
		if err != nil {
			return 0, 0, err
		}
		for range n { // each span costs bits, so a huge n runs out of them
			length, err := r.varbit()
			if err != nil {
				return 0, 0, err
			}
			if _, err := r.varbit(); err != nil { // the offset
				return 0, 0, err
			}
			buckets += min(length, maxChunkBuckets+1)
			if buckets > maxChunkBuckets {
				return 0, 0, fmt.Errorf("the bucket layout declares more than %d buckets", maxChunkBuckets)
			}
		}
	}
	return buckets, r.left(), nil
}

// bitReader reads a chunk's bit stream most significant bit first.
type bitReader struct {
	b   []byte
	pos uint64 // bits read
}

// left is how many bits are unread.
func (r *bitReader) left() uint64 { return uint64(len(r.b))*8 - r.pos }

// bits reads n (≤ 64) bits as an unsigned number.
func (r *bitReader) bits(n uint64) (uint64, error) {
	if n > r.left() {
		return 0, errShortLayout
	}
	var v uint64
	for range n {
		bit := r.b[r.pos/8] >> (7 - r.pos%8) & 1
		v = v<<1 | uint64(bit)
		r.pos++
	}
	return v, nil
}

// varbitWidths maps the number of leading one bits of a varbit number's
// prefix (0 to 8) to the width of the value that follows. The prefix is
// those ones and a terminating zero, which the eighth one makes
// unnecessary. Signed and unsigned numbers share the widths; the sign
// does not matter for skipping or for a count.
var varbitWidths = [9]uint64{0, 3, 6, 9, 12, 18, 25, 56, 64}

// varbit reads a varbit-encoded number and returns its raw bits (for an
// unsigned number, its value).
func (r *bitReader) varbit() (uint64, error) {
	ones := 0
	for ones < 8 {
		bit, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		if bit == 0 {
			break
		}
		ones++
	}
	return r.bits(varbitWidths[ones])
}
