package record

import (
	"bytes"
	"hash/maphash"
	"math/bits"
)

// symbolTable interns the strings of one Remote Write 2.0 request: it
// maps each to its reference (its index in the request's symbols) and
// appends new ones to the request's encoded symbols field by field. Its
// index is open addressing over a power of two of 8-byte slots, at most
// half used, each the hash's top 32 bits and the reference + 1 (0 is
// empty); the strings themselves are read back from the encoded symbols,
// so a lookup touches the slots and one contiguous buffer. The seed is
// random per table, so a sender cannot choose label values that collide.
// Not safe for concurrent use.
type symbolTable struct {
	seed  maphash.Seed
	slots []uint64
	spans []symSpan // by reference: where each symbol's bytes lie in enc
	enc   []byte    // the symbols fields of the request
}

// symSpan is where a symbol's bytes lie in symbolTable.enc.
type symSpan struct{ off, len uint32 }

// minSymbolSlots is the least index a table keeps.
const minSymbolSlots = 1 << 10

// reset empties the table, keeping its index unless the last request
// used less than an eighth of it, and interns "" as reference 0, as
// Remote Write 2.0 requires.
func (t *symbolTable) reset() {
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
	}
	if len(t.slots) < minSymbolSlots || 8*len(t.spans) < len(t.slots) && len(t.slots) > minSymbolSlots {
		t.slots = make([]uint64, max(minSymbolSlots, 1<<bits.Len(uint(2*len(t.spans)))))
	} else {
		clear(t.slots)
	}
	t.spans, t.enc = t.spans[:0], t.enc[:0]
	t.intern(nil)
}

// intern returns b's reference, adding it when new. b is copied.
func (t *symbolTable) intern(b []byte) uint32 {
	h := maphash.Bytes(t.seed, b)
	tag := h >> 32 << 32
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return t.add(i, tag, b)
		}
		if s&^0xffffffff == tag {
			sp := t.spans[uint32(s)-1]
			if bytes.Equal(t.enc[sp.off:sp.off+sp.len], b) {
				return uint32(s) - 1
			}
		}
	}
}

// add makes b the next reference, in empty slot i.
func (t *symbolTable) add(i, tag uint64, b []byte) uint32 {
	ref := uint32(len(t.spans))
	t.enc = appendBytesField(t.enc, fieldV2Symbols, b)
	t.spans = append(t.spans, symSpan{off: uint32(len(t.enc) - len(b)), len: uint32(len(b))})
	t.slots[i] = tag | uint64(ref+1)
	if 2*len(t.spans) > len(t.slots) {
		t.grow()
	}
	return ref
}

// grow doubles the index.
func (t *symbolTable) grow() {
	t.slots = make([]uint64, 2*len(t.slots))
	mask := uint64(len(t.slots) - 1)
	for ref, sp := range t.spans {
		h := maphash.Bytes(t.seed, t.enc[sp.off:sp.off+sp.len])
		i := h & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = h>>32<<32 | uint64(ref+1)
	}
}
