package cardinality

// hashSet is a compact open-addressing set of 64-bit hashes, each with the
// sub-window epoch it was last seen in. It costs 12 bytes a slot at a load
// factor between 1/8 and 3/4 (about 16-24 bytes an entry). It is not safe for
// concurrent use; the owning metricState's mutex guards it.
type hashSet struct {
	keys   []uint64 // 0 marks an empty slot; the hash 0 is stored as 1.
	epochs []uint32
	n      int
}

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
	if len(s.keys) == 0 {
		return -1, false
	}
	mask := len(s.keys) - 1
	i := int(mix(h)) & mask
	for {
		k := s.keys[i]
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
	prev = s.epochs[i]
	if epoch > prev {
		s.epochs[i] = epoch
	}
	return prev, true
}

// contains reports whether h is in the set.
func (s *hashSet) contains(h uint64) bool {
	_, ok := s.find(fixKey(h))
	return ok
}

// add inserts h with epoch, or raises its epoch if present.
func (s *hashSet) add(h uint64, epoch uint32) {
	h = fixKey(h)
	if (s.n+1)*4 > len(s.keys)*3 {
		s.resize(max(hashSetMinSlots, len(s.keys)*2))
	}
	i, ok := s.find(h)
	if ok {
		if epoch > s.epochs[i] {
			s.epochs[i] = epoch
		}
		return
	}
	s.keys[i] = h
	s.epochs[i] = epoch
	s.n++
}

func (s *hashSet) resize(slots int) {
	oldK, oldE := s.keys, s.epochs
	s.keys = make([]uint64, slots)
	s.epochs = make([]uint32, slots)
	s.n = 0
	for i, k := range oldK {
		if k != 0 {
			j, _ := s.find(k)
			s.keys[j] = k
			s.epochs[j] = oldE[i]
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
	for i := range s.keys {
		if s.keys[i] != 0 && s.epochs[i] < epoch {
			s.keys[i] = 0
			removed++
		}
	}
	if removed == 0 {
		return 0
	}
	// Rebuild: linear probing cannot leave holes in probe chains.
	slots := len(s.keys)
	live := s.n - removed
	for slots > hashSetMinSlots && live*8 < slots {
		slots /= 2
	}
	if live == 0 {
		s.keys, s.epochs, s.n = nil, nil, 0
		return removed
	}
	s.resize(slots)
	return removed
}

// each calls fn for every entry.
func (s *hashSet) each(fn func(h uint64, epoch uint32)) {
	for i, k := range s.keys {
		if k != 0 {
			fn(k, s.epochs[i])
		}
	}
}

// bytes returns the memory the set holds.
func (s *hashSet) bytes() int { return len(s.keys) * 12 }
