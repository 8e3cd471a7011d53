package ring

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
)

// observe applies a memberlist event to the member table and asks the
// rebuild loop to recompute the placement.
func (r *Ring) observe(event string, n *memberlist.Node) {
	r.metrics.events.WithLabelValues(event).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, had := r.members[n.Name]
	defer func() {
		if cur, has := r.members[n.Name]; has != had || cur != prev {
			close(r.membersChanged)
			r.membersChanged = make(chan struct{})
		}
	}()
	if event == eventLeave {
		delete(r.members, n.Name)
	} else {
		role, state, grpc, err := DecodeMeta(n.Meta)
		if err != nil {
			r.metrics.invalidMeta.Inc()
			r.logger.Warn("ignoring gossip member with invalid metadata", "member", n.Name, "address", n.Address(), "err", err)
			delete(r.members, n.Name)
		} else {
			r.members[n.Name] = Member{Name: n.Name, Role: role, State: state, Address: n.Address(), GRPCAddress: grpc}
		}
	}
	r.updateLocked()
}

// updateLocked refreshes the member gauges and asks for a placement
// rebuild. r.mu must be held.
func (r *Ring) updateLocked() {
	type roleState struct {
		role  Role
		state State
	}
	counts := make(map[roleState]int, 6)
	for _, m := range r.members {
		counts[roleState{m.Role, m.State}]++
	}
	for _, role := range []Role{RoleIngester, RoleDistributor} {
		for _, s := range []State{StateJoining, StateActive, StateLeaving} {
			r.metrics.members.WithLabelValues(string(role), string(s)).Set(float64(counts[roleState{role, s}]))
		}
	}
	select {
	case r.rebuild <- struct{}{}:
	default: // a rebuild is already pending and will see this change
	}
}

// rebuildLoop recomputes the placement when asked until the ring stops.
// Rebuilding off memberlist's event callback keeps its node lock short
// (NewPlacement takes milliseconds with many ingesters) and coalesces bursts.
func (r *Ring) rebuildLoop() {
	defer close(r.loopDone)
	for {
		select {
		case <-r.rebuild:
			r.rebuildPlacement()
		case <-r.done:
			return
		}
	}
}

// stopLoop ends the rebuild loop and waits for it.
func (r *Ring) stopLoop() {
	close(r.done)
	<-r.loopDone
}

// rebuildPlacement publishes a new placement if the ACTIVE ingesters changed.
// Only rebuildLoop calls it, so placements are published in order.
func (r *Ring) rebuildPlacement() {
	r.mu.Lock()
	var active []Member
	for _, m := range r.members {
		if m.Role == RoleIngester && m.State == StateActive {
			active = append(active, m)
		}
	}
	slices.SortFunc(active, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	same := slices.Equal(active, r.active)
	r.mu.Unlock()
	if same {
		return
	}
	p, err := NewPlacement(r.cfg.placementConfig(), active)
	if err != nil {
		r.logger.Error("rebuilding placement failed; keeping the previous one", "active_ingesters", len(active), "err", err)
		return
	}
	if p.Truncated() > 0 {
		r.logger.Warn("more ACTIVE ingesters than partitions; some own nothing, raise partition_count",
			"active_ingesters", len(active), "partition_count", r.cfg.PartitionCount, "without_partitions", p.Truncated())
	}
	r.mu.Lock()
	self := r.self.Name
	r.active = active
	r.placement.Store(p)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	r.metrics.rebuilds.Inc()
	r.metrics.activeIngesters.Set(float64(p.NumIngesters()))
	r.metrics.ownedPartitions.Set(float64(p.Partitions(self)))
	r.metrics.fingerprint.Set(float64(p.Fingerprint() & (1<<52 - 1)))
	r.metrics.truncated.Set(float64(p.Truncated()))
	r.metrics.lastChange.SetToCurrentTime()
	r.logger.Info("placement rebuilt", "active_ingesters", p.NumIngesters(), "owned_partitions", p.Partitions(self),
		"fingerprint", strconv.FormatUint(p.Fingerprint(), 16))
}
