package cluster

import (
	"github.com/promgov/promgov/pkg/ring"
)

// Membership lists the cluster's members. ring.Ring implements it; both
// methods are safe for concurrent use.
type Membership interface {
	// Members returns the live members, sorted by name.
	Members() []ring.Member
	// Self returns this node.
	Self() ring.Member
}

var _ Membership = (*ring.Ring)(nil)

// peers returns the ingesters other than self with a gRPC address: ACTIVE
// and LEAVING ones, and JOINING ones too when withJoining is set (a JOINING
// ingester owns nothing yet, but may hold state it restored from its
// snapshot).
func peers(m Membership, withJoining bool) []ring.Member {
	self := m.Self().Name
	var out []ring.Member
	for _, mem := range m.Members() {
		if mem.Role != ring.RoleIngester || mem.Name == self || mem.GRPCAddress == "" {
			continue
		}
		if mem.State == ring.StateJoining && !withJoining {
			continue
		}
		out = append(out, mem)
	}
	return out
}
