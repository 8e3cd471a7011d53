package ring

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// A node restarted under the same name at a new address (a StatefulSet pod
// with a new IP) is not taken up by a member that still holds its previous
// run: alive because the member has not seen that run leave yet, or failed
// less than dead_node_reclaim_time ago. memberlist ignores this run's
// announcements meanwhile ("Conflicting address"), and once the member
// would take the new address nothing announces it again until the next
// full-state exchange (push_pull_interval, with a random member). So this
// node watches the state its joins exchange: while a member answers with
// the previous address, it contacts the join addresses again, backing off
// from join_retry_interval to join_retry_max_interval, until every member
// that answers has its current address.

// checkStaleSelf signals r.stale when a peer's state, exchanged on a join,
// holds this node's name at another address and not as left (a left node's
// address is replaced by the same exchange). memberlist calls it outside its
// node lock, so it may take r.mu.
func (r *Ring) checkStaleSelf(peers []*memberlist.Node) {
	self := r.Self()
	for _, p := range peers {
		if p.Name == self.Name && p.Address() != self.Address && p.State != memberlist.StateLeft {
			select {
			case r.stale <- p.Address():
			default: // a signal is pending already
			}
			return
		}
	}
}

// announcer paces the joins that announce this node again while a member
// holds a previous address of it. It is used by the join loop only.
type announcer struct {
	r      *Ring
	delay  time.Duration
	timer  *time.Timer // the pending announcement; nil: none
	warned bool        // this episode was logged
}

// stale schedules an announcement after a member answered with prev.
func (a *announcer) stale(prev string) {
	if a.timer != nil {
		return
	}
	if !a.warned {
		a.r.logger.Warn("a member still holds this node's name at a previous address (a restart at a new address, before the member saw the previous run leave or fail); announcing this address again until every member has it",
			"previous_address", prev, "retry_in", a.delay)
		a.warned = true
	}
	a.timer = time.NewTimer(a.delay)
	a.delay = min(2*a.delay, a.r.cfg.JoinRetryMaxInterval)
}

// due is the pending announcement's timer (nil: none; never ready).
func (a *announcer) due() <-chan time.Time {
	if a.timer == nil {
		return nil
	}
	return a.timer.C
}

// announce contacts the join addresses; their answers signal r.stale again
// while one still holds a previous address, else the episode ends.
func (a *announcer) announce() {
	a.timer = nil
	ok := a.r.rejoin(a.delay)
	select {
	case prev := <-a.r.stale:
		a.stale(prev)
		return
	default:
	}
	if !ok {
		a.stale("")
		return
	}
	if a.warned {
		a.r.logger.Info("every member that answered holds this node's current address")
	}
	a.warned, a.delay = false, a.r.cfg.JoinRetryInterval
}

// stop releases the pending timer.
func (a *announcer) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}
