package cardinality

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/axiomhq/hyperloglog"
)

// ErrCorrupt is matched (errors.Is) by errors decoding a snapshot or an
// exported metric that is truncated or damaged.
var ErrCorrupt = errors.New("corrupt cardinality state")

// ErrIncompatible is matched by errors decoding state written with another
// precision or sub-window length.
var ErrIncompatible = errors.New("incompatible cardinality state")

// Decoder bounds: a string, a sketch and a count of entries.
const (
	maxStringLen = 1 << 16
	maxSketchLen = 16 + 5*(1<<18) // a sparse sketch at p=18 stays below this
	maxCount     = 1 << 31
)

// encoder writes the varint framing of snapshots and exports, checksumming
// everything it writes.
type encoder struct {
	w   *bufio.Writer
	crc hash.Hash32
	err error
	buf [binary.MaxVarintLen64]byte
}

func newEncoder(w io.Writer) *encoder {
	crc := crc32.NewIEEE()
	return &encoder{w: bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16), crc: crc}
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) uvarint(v uint64) { e.raw(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) varint(v int64)   { e.raw(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) u64(v uint64)     { e.raw(binary.LittleEndian.AppendUint64(e.buf[:0], v)) }
func (e *encoder) bytes(b []byte)   { e.uvarint(uint64(len(b))); e.raw(b) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.raw([]byte(s)) }

// sketch writes a small sketch as 0, count, hashes and a HyperLogLog one as
// 1 and its encoding.
func (e *encoder) sketch(s *sketch) {
	if e.err != nil {
		return
	}
	if s.hll == nil {
		e.uvarint(0)
		e.uvarint(uint64(len(s.small)))
		for _, h := range s.small {
			e.u64(h)
		}
		return
	}
	e.uvarint(1)
	b, err := s.hll.MarshalBinary()
	if err != nil {
		e.err = err
		return
	}
	e.bytes(b)
}

// finish appends the checksum and flushes.
func (e *encoder) finish() error {
	if e.err != nil {
		return e.err
	}
	if err := e.w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], e.crc.Sum32())
	_, err := e.w.Write(sum[:]) // the crc writer sees it too; it is no longer read
	if err != nil {
		return err
	}
	return e.w.Flush()
}

// decoder reads what encoder wrote from a byte slice. Every length and count
// is checked against what remains, so a damaged input cannot allocate more
// than its own size.
type decoder struct {
	b   []byte
	err error
}

// newDecoder verifies data's trailing checksum and returns a decoder over
// the rest.
func newDecoder(data []byte) (*decoder, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%d bytes, too short for a checksum: %w", len(data), ErrCorrupt)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("checksum mismatch: %w", ErrCorrupt)
	}
	return &decoder{b: body}, nil
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at %d bytes from the end: %w", what, len(d.b), ErrCorrupt)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("truncated uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) raw(n uint64, limit uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > limit || n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s of %d bytes", what, n))
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) str() string { return string(d.raw(d.uvarint(), maxStringLen, "string")) }

// count reads an entry count, each entry taking at least minBytes.
func (d *decoder) count(minBytes int, what string) int {
	n := d.uvarint()
	if d.err == nil && (n > maxCount || n*uint64(minBytes) > uint64(len(d.b))) {
		d.fail(fmt.Sprintf("%s count %d", what, n))
		return 0
	}
	return int(n)
}

func (d *decoder) sketch(p uint8) sketch {
	switch d.uvarint() {
	case 0:
		n := d.count(8, "small sketch hash")
		if n > smallMax {
			d.fail(fmt.Sprintf("small sketch of %d hashes", n))
			return sketch{}
		}
		var s sketch
		for i := 0; i < n && d.err == nil; i++ {
			s.insert(d.u64(), p)
		}
		return s
	case 1:
	default:
		d.fail("sketch kind")
		return sketch{}
	}
	b := d.raw(d.uvarint(), maxSketchLen, "sketch")
	if d.err != nil {
		return sketch{}
	}
	sk := &hyperloglog.Sketch{}
	if err := sk.UnmarshalBinary(b); err != nil {
		d.err = fmt.Errorf("sketch: %w: %w", ErrCorrupt, err)
		d.b = nil
		return sketch{}
	}
	if got := precisionOf(b); got != p {
		d.err = fmt.Errorf("sketch precision %d, want %d: %w", got, p, ErrIncompatible)
		d.b = nil
		return sketch{}
	}
	return sketch{hll: sk}
}

// precisionOf reads the precision from an encoded sketch's header.
func precisionOf(b []byte) uint8 {
	if len(b) < 2 {
		return 0
	}
	return b[1]
}
