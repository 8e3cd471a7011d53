package govsync

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// maxMessageBytes bounds a decoded gossip message; maxNodes bounds the
// node states a push/pull may carry.
const (
	maxMessageBytes = 1 << 10
	maxStateBytes   = 256 << 10
	maxNodes        = 1000
)

// Message kinds.
const (
	kindActive = "active" // a version became active (written on this node)
	kindNode   = "node"   // a node's state
)

// NodeState is what one node runs.
type NodeState struct {
	Node string `json:"node"`
	Role string `json:"role"`
	// Version is the active version (0: none from the store yet; the
	// file's sections run).
	Version uint64 `json:"version"`
	Hash    string `json:"hash,omitempty"`
	// Shadow is the shadow candidate running beside Version (0: none).
	Shadow uint64 `json:"shadow_version,omitempty"`
	// Error is why the node could not load the newest version ("" if it
	// could).
	Error string `json:"error,omitempty"`
	// Updated is when the node last changed its state (unix ms).
	Updated int64 `json:"updated_ms"`
}

// message is one gossip message.
type message struct {
	Kind    string     `json:"k"`
	Version uint64     `json:"v,omitempty"`
	State   *NodeState `json:"s,omitempty"`
}

// decodeMessage decodes a gossip message, refusing oversized or malformed
// ones.
func decodeMessage(b []byte) (message, error) {
	var m message
	if len(b) > maxMessageBytes {
		return m, fmt.Errorf("governance gossip message of %d bytes is over %d", len(b), maxMessageBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("governance gossip message: %w", err)
	}
	switch {
	case m.Kind == kindActive && m.Version > 0:
	case m.Kind == kindNode && m.State != nil && m.State.Node != "" && len(m.State.Node) <= 256 && len(m.State.Error) <= 512:
	default:
		return m, fmt.Errorf("governance gossip message: unknown or incomplete kind %q", m.Kind)
	}
	return m, nil
}

// decodeState decodes a push/pull state: the node states a peer knows.
func decodeState(b []byte) ([]NodeState, error) {
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("governance gossip state of %d bytes is over %d", len(b), maxStateBytes)
	}
	var s []NodeState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("governance gossip state: %w", err)
	}
	if len(s) > maxNodes {
		s = s[:maxNodes]
	}
	return s, nil
}

// broadcast is a queued gossip message. A newer message of the same key
// (the active notice, or one node's state) replaces an older one.
type broadcast struct {
	key string
	msg []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.key == b.key
}
func (b *broadcast) Name() string    { return b.key }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
