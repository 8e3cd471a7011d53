package cardinality

import (
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// An epoch numbers a sub-window: unix time divided by the sub-window length.
// Epochs are absolute, so they mean the same on every ingester and across
// restarts, and snapshots and handoffs can carry them as they are.
func epochOf(t time.Time, sub time.Duration) int64 { return t.UnixNano() / int64(sub) }

// live reports whether a slot of epoch e is inside the window ending at cur.
func live(e, cur int64, n int) bool { return e > cur-int64(n) && e <= cur }

// smallMax is how many distinct hashes a sketch keeps as an exact list
// before it becomes a HyperLogLog sketch.
const smallMax = 24

func newSketch(p uint8) *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(p, true)
	if err != nil {
		panic(err) // precision is validated by Config.Validate
	}
	return sk
}

// sketch counts distinct 64-bit hashes. While small it is an exact list of
// hashes (8 bytes each, no HyperLogLog overhead: most label names and many
// metrics stay here), then a sparse and finally dense HyperLogLog sketch of
// the owner's precision. It is not safe for concurrent use.
type sketch struct {
	small []uint64
	hll   *hyperloglog.Sketch
}

func (s *sketch) insert(h uint64, p uint8) {
	if s.hll != nil {
		s.hll.InsertHash(h)
		return
	}
	if slices.Contains(s.small, h) {
		return
	}
	if len(s.small) < smallMax {
		s.small = append(s.small, h)
		return
	}
	s.promote(p)
	s.hll.InsertHash(h)
}

func (s *sketch) promote(p uint8) {
	if s.hll != nil {
		return
	}
	s.hll = newSketch(p)
	for _, h := range s.small {
		s.hll.InsertHash(h)
	}
	s.small = nil
}

// estimate returns the distinct count; exact while small. It may compact a
// HyperLogLog sketch's sparse buffer, so it needs the owner's lock.
func (s *sketch) estimate() uint64 {
	if s.hll == nil {
		return uint64(len(s.small))
	}
	return s.hll.Estimate()
}

// merge adds o to s.
func (s *sketch) merge(o *sketch, p uint8) error {
	if o.hll == nil {
		for _, h := range o.small {
			s.insert(h, p)
		}
		return nil
	}
	return s.mergeHLL(o.hll, p)
}

// mergeHLL adds a HyperLogLog sketch of precision p to s.
func (s *sketch) mergeHLL(o *hyperloglog.Sketch, p uint8) error {
	s.promote(p)
	return s.hll.Merge(o)
}

// toHLL returns s as a HyperLogLog sketch: its own, or a new one built from
// the small list.
func (s *sketch) toHLL(p uint8) *hyperloglog.Sketch {
	if s.hll != nil {
		return s.hll
	}
	sk := newSketch(p)
	for _, h := range s.small {
		sk.InsertHash(h)
	}
	return sk
}

// slot is one sub-window's sketch.
type slot struct {
	epoch int64
	sk    sketch
}

// ring is a rolling window of at most n sub-window sketches, allocated as
// sub-windows are used: an idle ring costs a nil slice. It is not safe for
// concurrent use; its owner's mutex guards it.
type ring struct {
	slots []slot
}

// at returns the sketch of epoch, reusing the oldest slot when n are in use;
// nil when every slot holds a newer epoch.
func (r *ring) at(epoch int64, n int) *sketch {
	oldest := -1
	for i := range r.slots {
		if r.slots[i].epoch == epoch {
			return &r.slots[i].sk
		}
		if oldest < 0 || r.slots[i].epoch < r.slots[oldest].epoch {
			oldest = i
		}
	}
	if len(r.slots) < n {
		r.slots = append(r.slots, slot{epoch: epoch})
		return &r.slots[len(r.slots)-1].sk
	}
	if r.slots[oldest].epoch > epoch {
		return nil
	}
	r.slots[oldest] = slot{epoch: epoch}
	return &r.slots[oldest].sk
}

// insert adds hash to the sub-window of epoch.
func (r *ring) insert(epoch int64, n int, p uint8, hash uint64) {
	if sk := r.at(epoch, n); sk != nil {
		sk.insert(hash, p)
	}
}

// mergeInto merges the live slots of the window ending at cur into dst.
func (r *ring) mergeInto(dst *sketch, cur int64, n int, p uint8) error {
	for i := range r.slots {
		if s := &r.slots[i]; live(s.epoch, cur, n) {
			if err := dst.merge(&s.sk, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeSlot merges sk into the slot of epoch (imports and restores).
func (r *ring) mergeSlot(epoch int64, n int, p uint8, sk *sketch) error {
	if dst := r.at(epoch, n); dst != nil {
		return dst.merge(sk, p)
	}
	return nil
}

// maxEpoch returns the newest epoch r holds a slot of; ok is false when it
// holds none.
func (r *ring) maxEpoch() (e int64, ok bool) {
	for i := range r.slots {
		if !ok || r.slots[i].epoch > e {
			e, ok = r.slots[i].epoch, true
		}
	}
	return e, ok
}

// minLive returns the oldest epoch of a live slot in the window ending at
// cur; ok is false when no slot is live.
func (r *ring) minLive(cur int64, n int) (e int64, ok bool) {
	for i := range r.slots {
		if ep := r.slots[i].epoch; live(ep, cur, n) && (!ok || ep < e) {
			e, ok = ep, true
		}
	}
	return e, ok
}

// expire frees slots outside the window ending at cur and reports whether
// any live slot remains.
func (r *ring) expire(cur int64, n int) bool {
	r.slots = slices.DeleteFunc(r.slots, func(s slot) bool { return !live(s.epoch, cur, n) })
	if len(r.slots) == 0 {
		r.slots = nil
		return false
	}
	return true
}

// window merges the live slots of the window ending at cur and returns the
// estimate and, when encode is set, the encoded HyperLogLog sketch. A single
// live slot is read in place. Called with the lock guarding r.
func (r *ring) window(cur int64, n int, p uint8, encode bool) (uint64, []byte, error) {
	var only *sketch
	count := 0
	for i := range r.slots {
		if live(r.slots[i].epoch, cur, n) {
			only = &r.slots[i].sk
			count++
		}
	}
	if count == 0 {
		return 0, nil, nil
	}
	if count > 1 {
		only = &sketch{}
		if err := r.mergeInto(only, cur, n, p); err != nil {
			return 0, nil, err
		}
	}
	est := only.estimate()
	if !encode {
		return est, nil, nil
	}
	b, err := only.toHLL(p).MarshalBinary()
	return est, b, err
}

// rates counts samples and bytes per sub-window.
type rates struct {
	slots []rateSlot
}

type rateSlot struct {
	epoch          int64
	samples, bytes uint64
}

func (r *rates) add(epoch int64, n int, samples, bytes uint64) {
	oldest := -1
	for i := range r.slots {
		if r.slots[i].epoch == epoch {
			r.slots[i].samples += samples
			r.slots[i].bytes += bytes
			return
		}
		if oldest < 0 || r.slots[i].epoch < r.slots[oldest].epoch {
			oldest = i
		}
	}
	s := rateSlot{epoch: epoch, samples: samples, bytes: bytes}
	switch {
	case len(r.slots) < n:
		r.slots = append(r.slots, s)
	case r.slots[oldest].epoch < epoch:
		r.slots[oldest] = s
	}
}

// perSecond returns samples/s and bytes/s over the live part of the window
// ending at now, counting from first (unix nanoseconds, the first
// observation) when that is later than the window start.
func (r *rates) perSecond(now time.Time, sub time.Duration, n int, first int64) (float64, float64) {
	cur := epochOf(now, sub)
	var samples, bytes uint64
	for _, s := range r.slots {
		if live(s.epoch, cur, n) {
			samples += s.samples
			bytes += s.bytes
		}
	}
	if samples == 0 && bytes == 0 {
		return 0, 0
	}
	start := (cur - int64(n) + 1) * int64(sub)
	start = max(start, first)
	secs := max(float64(now.UnixNano()-start)/1e9, 1)
	return float64(samples) / secs, float64(bytes) / secs
}
