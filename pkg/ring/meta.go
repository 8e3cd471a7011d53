package ring

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Role is what a member does in the cluster. Only ingesters own partitions.
type Role string

const (
	// RoleIngester owns partitions while ACTIVE and receives batches.
	RoleIngester Role = "ingester"
	// RoleDistributor routes series to ingesters and owns nothing.
	RoleDistributor Role = "distributor"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleIngester || r == RoleDistributor }

// State is the lifecycle state a member advertises in its gossip metadata.
type State string

const (
	// StateJoining is the state of an ingester that is starting (replaying its
	// WAL, connecting to the backend). It owns nothing yet.
	StateJoining State = "JOINING"
	// StateActive is the only state in which an ingester owns partitions.
	StateActive State = "ACTIVE"
	// StateLeaving is the state of a member that is shutting down or draining.
	// It owns nothing; its partitions have moved to the remaining ingesters.
	StateLeaving State = "LEAVING"
)

// Valid reports whether s is a known state.
func (s State) Valid() bool { return s == StateJoining || s == StateActive || s == StateLeaving }

// Member is one node of the cluster as seen through gossip.
type Member struct {
	// Name is the unique memberlist node name.
	Name string `json:"name"`
	// Role is ingester or distributor.
	Role Role `json:"role"`
	// State is the advertised lifecycle state.
	State State `json:"state"`
	// Address is the gossip host:port.
	Address string `json:"address"`
	// GRPCAddress is the host:port ingesters serve batches on; empty for
	// distributors.
	GRPCAddress string `json:"grpc_address"`
}

// ErrInvalidMeta is returned (wrapped) by DecodeMeta when node metadata is
// not promgov ring metadata of a supported version.
var ErrInvalidMeta = errors.New("invalid ring node metadata")

// metaVersion is the version of the node metadata encoding.
const metaVersion = 1

// nodeMeta is the wire form of the metadata a member gossips about itself.
// Keys are one letter to stay far below memberlist.MetaMaxSize.
type nodeMeta struct {
	Version int    `json:"v"`
	Role    Role   `json:"r"`
	State   State  `json:"s"`
	GRPC    string `json:"g,omitempty"`
}

// EncodeMeta encodes the gossip metadata of a member (role, state and gRPC
// address) as compact JSON. It fails if the result would not fit into
// memberlist.MetaMaxSize bytes or the role or state is unknown.
func EncodeMeta(role Role, state State, grpcAddress string) ([]byte, error) {
	if !role.Valid() {
		return nil, fmt.Errorf("encode meta: %w: unknown role %q", ErrInvalidMeta, role)
	}
	if !state.Valid() {
		return nil, fmt.Errorf("encode meta: %w: unknown state %q", ErrInvalidMeta, state)
	}
	b, err := json.Marshal(nodeMeta{Version: metaVersion, Role: role, State: state, GRPC: grpcAddress})
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("encode meta: %w: %d bytes exceed the %d byte limit (gRPC address too long)",
			ErrInvalidMeta, len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes metadata written by EncodeMeta. Errors wrap
// ErrInvalidMeta.
func DecodeMeta(b []byte) (Role, State, string, error) {
	if len(b) == 0 {
		return "", "", "", fmt.Errorf("decode meta: %w: empty", ErrInvalidMeta)
	}
	if len(b) > memberlist.MetaMaxSize {
		return "", "", "", fmt.Errorf("decode meta: %w: %d bytes exceed the %d byte limit", ErrInvalidMeta, len(b), memberlist.MetaMaxSize)
	}
	var m nodeMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", "", fmt.Errorf("decode meta: %w: %w", ErrInvalidMeta, err)
	}
	switch {
	case m.Version != metaVersion:
		return "", "", "", fmt.Errorf("decode meta: %w: unsupported version %d", ErrInvalidMeta, m.Version)
	case !m.Role.Valid():
		return "", "", "", fmt.Errorf("decode meta: %w: unknown role %q", ErrInvalidMeta, m.Role)
	case !m.State.Valid():
		return "", "", "", fmt.Errorf("decode meta: %w: unknown state %q", ErrInvalidMeta, m.State)
	case m.Role == RoleIngester && m.GRPC == "":
		return "", "", "", fmt.Errorf("decode meta: %w: ingester without gRPC address", ErrInvalidMeta)
	}
	return m.Role, m.State, m.GRPC, nil
}
