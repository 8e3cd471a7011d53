package forward

import (
	"math"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/promgov/promgov/pkg/record"
)

// Shard scaling. The Forwarder starts with Config.MinShards shards and,
// every Config.ShardUpdateInterval, estimates how many it needs from what
// the shards did in the last intervals:
//
//	busy      seconds spent in sends the backend answered, per second
//	out       elements the backend answered for, per second
//	in        elements handed to the shards, per second
//	backlog   elements held in memory, not yet answered for
//
//	desired = (busy / out) · (in + backlog / backlogDrainTime)
//
// busy/out is the send time one element costs, so desired is the number of
// shards sending in parallel that keeps up with the incoming rate and
// drains the backlog within backlogDrainTime: it grows with the backlog and
// with the backend's latency, and falls towards zero when idle. The rates
// are smoothed (EWMA), the count grows as soon as desired exceeds it and
// shrinks only below shrinkFraction of it, within [MinShards, MaxShards].
// The scaler never reshards while the backend fails (more shards would only
// wait at the same backoff gate) or while a retired generation still has a
// request in flight.
const (
	ewmaWeight       = 0.3
	backlogDrainTime = 10 * time.Second
	shrinkFraction   = 0.7
)

// shardEstimator smooths the load and computes the desired shard count.
// It is used by the scaler goroutine only.
type shardEstimator struct {
	in, out, busy float64 // per second, smoothed
	primed        bool
}

// observe adds one interval's counters.
func (e *shardEstimator) observe(in, out int64, busy, interval time.Duration) {
	secs := interval.Seconds()
	rin, rout, rbusy := float64(in)/secs, float64(out)/secs, busy.Seconds()/secs
	if !e.primed {
		e.in, e.out, e.busy, e.primed = rin, rout, rbusy, true
		return
	}
	e.in += ewmaWeight * (rin - e.in)
	e.out += ewmaWeight * (rout - e.out)
	e.busy += ewmaWeight * (rbusy - e.busy)
}

// desired is the number of shards the load needs (fractional), and false
// when it cannot be told: nothing was answered lately although data waits.
func (e *shardEstimator) desired(backlog int64, drain time.Duration) (float64, bool) {
	if e.out <= 0 {
		if e.in <= 0 && backlog <= 0 {
			return 0, true // idle
		}
		return 0, false
	}
	perElement := e.busy / e.out
	return perElement * (e.in + float64(backlog)/drain.Seconds()), true
}

// targetShards is the shard count to move to from current given desired.
func targetShards(current int, desired float64, minShards, maxShards int) int {
	want := int(math.Ceil(desired))
	switch {
	case want > current:
	case desired < shrinkFraction*float64(current):
	default:
		return current
	}
	return min(max(want, minShards), maxShards)
}

// scale runs the scaler until f.stop is closed.
func (f *Forwarder) scale() {
	t := time.NewTicker(f.cfg.ShardUpdateInterval)
	defer t.Stop()
	var est shardEstimator
	last := time.Now()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			in, out, busy := f.load.take()
			est.observe(in, out, busy, now.Sub(last))
			last = now
			desired, known := est.desired(f.pending.Load(), f.backlogDrain)
			if !known {
				continue
			}
			f.m.desiredShards.Set(desired)
			current := f.numShards()
			next := targetShards(current, desired, f.cfg.MinShards, f.cfg.MaxShards)
			if next == current || f.gate.failing() || f.draining() {
				continue
			}
			f.logger.Info("resharding the forwarder", "from", current, "to", next, "desired", desired,
				"pending", f.pending.Load(), "in_per_second", est.in, "sent_per_second", est.out)
			f.reshard(next)
		}
	}
}

// numShards is the current generation's shard count.
func (f *Forwarder) numShards() int {
	f.layoutMu.RLock()
	defer f.layoutMu.RUnlock()
	return len(f.cur.shards)
}

// draining reports whether a retired generation is still running.
func (f *Forwarder) draining() bool {
	f.layoutMu.RLock()
	defer f.layoutMu.RUnlock()
	return len(f.sets) > 1
}

// reshard replaces the current generation by one of n shards: everything
// the old shards hold but are not sending moves to the new shards (each
// series' data in order, ahead of anything newer), the old shards exit once
// their request in flight is answered, and the new shards start sending
// after that. It is called by the scaler (and by tests) while Run runs and
// before its shutdown begins; before Run it does nothing.
func (f *Forwarder) reshard(n int) {
	f.layoutMu.Lock()
	if f.stop == nil {
		f.layoutMu.Unlock()
		return
	}
	old := f.cur
	set := newShardSet(n, old.done)
	for _, s := range old.shards {
		for _, p := range s.take() {
			f.move(set, p)
		}
	}
	f.cur = set
	f.sets = append(f.sets, set)
	f.startSet(set)
	f.layoutMu.Unlock()
	f.m.shards.Set(float64(n))
	f.m.reshards.Inc()
}

// move re-places the series and metadata of p, taken from a retired shard,
// on set's shards, carrying its WAL records along; f.layoutMu is held.
func (f *Forwarder) move(set *shardSet, p *pendingRequest) {
	touched := make([]bool, len(set.shards))
	carries := make(map[*pendingRequest]struct{}) // requests that reference p's records
	builder := func(si int) *pendingRequest {
		s := set.shards[si]
		b := s.builder(p.tenant, p.created, f.newPending)
		if p.created.Before(b.created) {
			b.created = p.created // keep the batch deadline of the oldest data
		}
		if _, ok := carries[b]; !ok {
			carries[b] = struct{}{}
			for _, seq := range p.records {
				f.attach(b, seq)
			}
		}
		touched[si] = true
		return b
	}
	th := xxhash.Sum64String(p.tenant)
	it := record.NewIter(p.batch)
	for it.Next() {
		e := it.Entry()
		si := set.shardOf(th, e.Hash)
		s := set.shards[si]
		s.mu.Lock()
		b := builder(si)
		b.addEntry(e)
		if b.count() >= f.cfg.MaxSamplesPerSend {
			s.seal(p.tenant)
		}
		s.mu.Unlock()
	}
	for i := range p.meta {
		m := &p.meta[i]
		si := set.metaShardOf(p.tenant, m.MetricFamilyName)
		s := set.shards[si]
		s.mu.Lock()
		builder(si).addMetadata(m)
		s.mu.Unlock()
	}
	// p's references to its records pass to the requests that now carry
	// its data (taken above, before these are released).
	f.settle(p)
	f.recycle(p)
	for si, ok := range touched {
		if ok {
			set.shards[si].signal()
		}
	}
}
