package cardinality

import "unsafe"

// hashSet is a compact open-addressing set of 64-bit hashes, each with the
// sub-window epoch it was last seen in. A slot holds both in 12 bytes (the
// hash as two 32-bit halves, so that the slot needs no padding), so that a
// lookup, on the ingester's hot path for every series, touches one cache
// line (rarely two) rather than two arrays; at a load factor between 3/8
// and 3/4 that is 16-32 bytes an entry. It is not safe for concurrent use;
// the owning metricState's mutex guards it.
type hashSet struct {
	slots []hashSlot
	n     int
}

// hashSlot is one entry; key 0 marks an empty slot (the hash 0 is stored
// as 1). Three 32-bit words: a uint64 field would align the slot to 16
// bytes, a third of them padding.
type hashSlot struct {
	lo, hi uint32 // the key
	epoch  uint32
}

func newSlot(key uint64, epoch uint32) hashSlot {
	return hashSlot{lo: uint32(key), hi: uint32(key >> 32), epoch: epoch}
}

// key is the slot's hash (0: empty).
func (sl *hashSlot) key() uint64 { return uint64(sl.hi)<<32 | uint64(sl.lo) }

const hashSetMinSlots = 8

func fixKey(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// len returns the number of entries.
func (s *hashSet) len() int { return s.n }

// find returns the slot of h and whether it holds h.
func (s *hashSet) find(h uint64) (int, bool) {
	if len(s.slots) == 0 {
		return -1, false
	}
	mask := len(s.slots) - 1
	i := int(mix(h)) & mask
	for {
		k := s.slots[i].key()
		if k == h {
			return i, true
		}
		if k == 0 {
			return i, false
		}
		i = (i + 1) & mask
	}
}

// mix spreads hashes whose low bits are poorly distributed.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// touch sets h's epoch if present and reports whether it was present and its
// previous epoch.
func (s *hashSet) touch(h uint64, epoch uint32) (prev uint32, ok bool) {
	h = fixKey(h)
	i, ok := s.find(h)
	if !ok {
		return 0, false
	}
	sl := &s.slots[i]
	prev = sl.epoch
	if epoch > prev {
		sl.epoch = epoch
	}
	return prev, true
}

// reset empties the set, keeping its slots unless they are many more than
// it held.
func (s *hashSet) reset() {
	if len(s.slots) > hashSetMinSlots && s.n*8 < len(s.slots) {
		s.slots = nil
	} else {
		clear(s.slots)
	}
	s.n = 0
}

// contains reports whether h is in the set.
func (s *hashSet) contains(h uint64) bool {
	_, ok := s.find(fixKey(h))
	return ok
}

// add inserts h with epoch, or raises its epoch if present.
func (s *hashSet) add(h uint64, epoch uint32) {
	h = fixKey(h)
	if (s.n+1)*4 > len(s.slots)*3 {
		s.resize(max(hashSetMinSlots, len(s.slots)*2))
	}
	i, ok := s.find(h)
	if ok {
		if epoch > s.slots[i].epoch {
			s.slots[i].epoch = epoch
		}
		return
	}
	s.slots[i] = newSlot(h, epoch)
	s.n++
}

func (s *hashSet) resize(slots int) {
	old := s.slots
	s.slots = make([]hashSlot, slots)
	s.n = 0
	for _, sl := range old {
		if k := sl.key(); k != 0 {
			j, _ := s.find(k)
			s.slots[j] = sl
			s.n++
		}
	}
}

// evictBefore removes entries last seen before epoch and returns how many it
// removed. It shrinks the table when it becomes sparse.
func (s *hashSet) evictBefore(epoch uint32) int {
	if s.n == 0 {
		return 0
	}
	removed := 0
	for i := range s.slots {
		if s.slots[i].key() != 0 && s.slots[i].epoch < epoch {
			s.slots[i].lo, s.slots[i].hi = 0, 0
			removed++
		}
	}
	if removed == 0 {
		return 0
	}
	// Rebuild: linear probing cannot leave holes in probe chains.
	slots := len(s.slots)
	live := s.n - removed
	for slots > hashSetMinSlots && live*8 < slots {
		slots /= 2
	}
	if live == 0 {
		s.slots, s.n = nil, 0
		return removed
	}
	s.resize(slots)
	return removed
}

// each calls fn for every entry.
func (s *hashSet) each(fn func(h uint64, epoch uint32)) {
	for i := range s.slots {
		if k := s.slots[i].key(); k != 0 {
			fn(k, s.slots[i].epoch)
		}
	}
}

// bytes returns the memory the set holds.
func (s *hashSet) bytes() int { return len(s.slots) * int(unsafe.Sizeof(hashSlot{})) }
