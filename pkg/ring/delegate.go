package ring

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/memberlist"
)

// Membership event names (label values of promgov_ring_membership_events_total).
const (
	eventJoin   = "join"
	eventLeave  = "leave"
	eventUpdate = "update"
)

// delegate adapts the Ring to memberlist's Delegate and EventDelegate so
// those methods stay off the Ring's exported API. memberlist calls the event
// methods one at a time (never concurrently) while holding its node lock, so
// they must not call back into memberlist.
type delegate struct{ r *Ring }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.MergeDelegate = delegate{}
)

// NodeMeta returns the encoded role, state and gRPC address of this node.
func (d delegate) NodeMeta(limit int) []byte {
	m := *d.r.meta.Load()
	if len(m) > limit {
		// EncodeMeta enforces MetaMaxSize, which is the only limit memberlist
		// passes; never hand memberlist an oversized value (it panics).
		return nil
	}
	return m
}

// NotifyMsg hands a user message to the Gossip user, if any.
func (d delegate) NotifyMsg(b []byte) {
	if g := d.r.gossip.Load(); g != nil {
		(*g).NotifyMsg(b)
	}
}

// GetBroadcasts returns the Gossip user's broadcasts, if any.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	if g := d.r.gossip.Load(); g != nil {
		return (*g).GetBroadcasts(overhead, limit)
	}
	return nil
}

// LocalState returns the Gossip user's state for a push/pull, if any.
func (d delegate) LocalState(join bool) []byte {
	if g := d.r.gossip.Load(); g != nil {
		return (*g).LocalState(join)
	}
	return nil
}

// MergeRemoteState hands a peer's pushed state to the Gossip user, if any.
func (d delegate) MergeRemoteState(b []byte, join bool) {
	if g := d.r.gossip.Load(); g != nil {
		(*g).MergeRemoteState(b, join)
	}
}

// NotifyJoin records a member that joined (or this node itself on start).
func (d delegate) NotifyJoin(n *memberlist.Node) { d.r.observe(eventJoin, n) }

// NotifyLeave removes a member that left or was declared dead.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.r.observe(eventLeave, n) }

// NotifyUpdate records a member whose metadata (state) changed.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.r.observe(eventUpdate, n) }

// NotifyMerge looks at a peer's state exchanged on a join for a previous
// address of this node (announce.go); it never refuses the merge.
func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	d.r.checkStaleSelf(peers)
	return nil
}

// logBridge turns memberlist's "[LEVEL] memberlist: msg" log lines into slog
// records at the matching level.
type logBridge struct{ logger *slog.Logger }

// Write logs one memberlist log line.
func (b logBridge) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if bytes.HasPrefix(line, []byte(l.prefix)) {
			level = l.level
			line = bytes.TrimSpace(line[len(l.prefix):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if level > slog.LevelDebug && bytes.Contains(line, []byte("use of closed network connection")) {
		// memberlist reports in-flight sends racing its own shutdown as errors.
		level = slog.LevelDebug
	}
	if b.logger.Enabled(context.Background(), level) {
		b.logger.Log(context.Background(), level, string(line), "component", "memberlist")
	}
	return len(p), nil
}
