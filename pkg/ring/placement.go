package ring

import (
	"fmt"
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Key appends the placement key of a series, tenant + "\x00" + metric name,
// to buf and returns the extended slice. Reusing buf (buf[:0]) makes it
// allocation free.
func Key(buf []byte, tenant, metric string) []byte {
	buf = append(buf, tenant...)
	buf = append(buf, 0)
	return append(buf, metric...)
}

// xxHasher is the consistent.Hasher used for both the ring and key lookups,
// so that Placement.Owner agrees with consistent.LocateKey.
type xxHasher struct{}

// Sum64 hashes b with xxhash.
func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

var _ consistent.Hasher = xxHasher{}

// ringNode is the consistent.Member of an ingester: its node name.
type ringNode string

// String returns the node name.
func (n ringNode) String() string { return string(n) }

var _ consistent.Member = ringNode("")

// PlacementConfig is the subset of Config that determines a placement. Every
// member must use the same values, or they compute different placements.
type PlacementConfig struct {
	// PartitionCount is the number of partitions keys are hashed onto.
	PartitionCount int
	// ReplicationFactor is the number of virtual nodes per ingester.
	ReplicationFactor int
	// Load is the bounded-load factor: no ingester owns more than
	// ceil(Load * floor(PartitionCount/ingesters)) partitions.
	Load float64
}

// Placement is an immutable snapshot of which ACTIVE ingester owns which
// partition. All methods are safe for concurrent use and take no locks.
type Placement struct {
	partitionCount uint64
	// owners maps a partition to an index into ingesters; empty when there
	// is no ACTIVE ingester.
	owners    []int32
	ingesters []Member
	counts    []int
	// truncated is the number of ACTIVE ingesters left out because there were
	// more ingesters than partitions.
	truncated   int
	fingerprint uint64
}

// NewPlacement computes the placement of the ACTIVE ingesters among members
// (others are ignored) with consistent hashing with bounded loads. The result
// depends only on cfg and on the set of ACTIVE ingesters (their names), not on
// the order of members, so every node computes the same placement from the
// same member set.
//
// If there are more ACTIVE ingesters than partitions, only the first
// PartitionCount by name own partitions (Truncated reports how many were left
// out).
func NewPlacement(cfg PlacementConfig, members []Member) (*Placement, error) {
	if cfg.PartitionCount < 1 {
		return nil, fmt.Errorf("new placement: partition count %d must be >= 1", cfg.PartitionCount)
	}
	if cfg.ReplicationFactor < 2 {
		return nil, fmt.Errorf("new placement: replication factor %d must be >= 2", cfg.ReplicationFactor)
	}
	if !(cfg.Load > 1) {
		return nil, fmt.Errorf("new placement: load %v must be > 1", cfg.Load)
	}
	var active []Member
	for _, m := range members {
		if m.Role == RoleIngester && m.State == StateActive {
			active = append(active, m)
		}
	}
	slices.SortFunc(active, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	active = slices.CompactFunc(active, func(a, b Member) bool { return a.Name == b.Name })
	p := &Placement{partitionCount: uint64(cfg.PartitionCount)}
	if len(active) > cfg.PartitionCount {
		p.truncated = len(active) - cfg.PartitionCount
		active = active[:cfg.PartitionCount]
	}
	if len(active) == 0 {
		p.fingerprint = p.computeFingerprint()
		return p, nil
	}
	table, err := partitionTable(cfg, active)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int32, len(active))
	for i, m := range active {
		index[m.Name] = int32(i)
	}
	p.ingesters = active
	p.counts = make([]int, len(active))
	p.owners = make([]int32, cfg.PartitionCount)
	for part, name := range table {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("new placement: partition %d assigned to unknown member %q", part, name)
		}
		p.owners[part] = i
		p.counts[i]++
	}
	p.fingerprint = p.computeFingerprint()
	return p, nil
}

// partitionTable runs consistent hashing with bounded loads over the sorted
// active ingesters and returns the owner name of every partition. consistent
// panics when it cannot place a partition; the config checks make that
// impossible, but a panic is still turned into an error.
func partitionTable(cfg PlacementConfig, active []Member) (table []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("new placement: consistent hashing of %d ingesters failed: %v", len(active), r)
		}
	}()
	nodes := make([]consistent.Member, len(active))
	for i, m := range active {
		nodes[i] = ringNode(m.Name)
	}
	c := consistent.New(nodes, consistent.Config{
		Hasher:            xxHasher{},
		PartitionCount:    cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
	table = make([]string, cfg.PartitionCount)
	for part := range table {
		owner := c.GetPartitionOwner(part)
		if owner == nil {
			return nil, fmt.Errorf("new placement: partition %d has no owner", part)
		}
		table[part] = owner.String()
	}
	return table, nil
}

// PartitionCount returns the number of partitions.
func (p *Placement) PartitionCount() int { return int(p.partitionCount) }

// Partition returns the partition of key: xxhash(key) mod PartitionCount,
// the same computation as consistent.FindPartitionID.
func (p *Placement) Partition(key []byte) int {
	return int(xxhash.Sum64(key) % p.partitionCount)
}

// Owner returns the ingester that owns key (see Key). ok is false when no
// ingester is ACTIVE. It does not allocate.
func (p *Placement) Owner(key []byte) (Member, bool) {
	i := p.OwnerIndex(key)
	if i < 0 {
		return Member{}, false
	}
	return p.ingesters[i], true
}

// OwnerIndex returns the index of the ingester owning key, for use with
// Ingester and NumIngesters (handy to group series into one batch per
// ingester), or -1 when no ingester is ACTIVE. It does not allocate.
func (p *Placement) OwnerIndex(key []byte) int {
	if len(p.owners) == 0 {
		return -1
	}
	return int(p.owners[xxhash.Sum64(key)%p.partitionCount])
}

// PartitionOwner returns the owner of a partition; ok is false when there
// is no ACTIVE ingester or part is out of range.
func (p *Placement) PartitionOwner(part int) (Member, bool) {
	if part < 0 || part >= len(p.owners) {
		return Member{}, false
	}
	return p.ingesters[p.owners[part]], true
}

// NumIngesters returns the number of ingesters that own partitions.
func (p *Placement) NumIngesters() int { return len(p.ingesters) }

// Ingester returns the i-th ingester (sorted by name), 0 <= i < NumIngesters.
func (p *Placement) Ingester(i int) Member { return p.ingesters[i] }

// Ingesters returns a copy of the ACTIVE ingesters owning partitions, sorted
// by name.
func (p *Placement) Ingesters() []Member { return slices.Clone(p.ingesters) }

// Partitions returns the number of partitions owned by the named member.
func (p *Placement) Partitions(name string) int {
	i, ok := slices.BinarySearchFunc(p.ingesters, name, func(m Member, n string) int { return strings.Compare(m.Name, n) })
	if !ok {
		return 0
	}
	return p.counts[i]
}

// Share returns the fraction (0..1) of partitions owned by the named member.
func (p *Placement) Share(name string) float64 {
	return float64(p.Partitions(name)) / float64(p.partitionCount)
}

// Truncated returns how many ACTIVE ingesters own nothing because there are
// more ingesters than partitions (raise partition_count if non-zero).
func (p *Placement) Truncated() int { return p.truncated }

// Fingerprint returns a hash of the partition table and the owners' names and
// gRPC addresses. Members that agree on the placement report the same value,
// so it is a cheap convergence check.
func (p *Placement) Fingerprint() uint64 { return p.fingerprint }

// computeFingerprint hashes the partition table and the owners.
func (p *Placement) computeFingerprint() uint64 {
	d := xxhash.New()
	var b [4]byte
	for _, o := range p.owners {
		b[0], b[1], b[2], b[3] = byte(o), byte(o>>8), byte(o>>16), byte(o>>24)
		_, _ = d.Write(b[:])
	}
	for _, m := range p.ingesters {
		_, _ = d.WriteString(m.Name)
		_, _ = d.Write([]byte{0})
		_, _ = d.WriteString(m.GRPCAddress)
		_, _ = d.Write([]byte{0})
	}
	return d.Sum64()
}

// OwnerIndexOfHash is OwnerIndex for a key already hashed with xxhash
// (callers that remember a series' placement hash skip rehashing it).
func (p *Placement) OwnerIndexOfHash(h uint64) int {
	if len(p.owners) == 0 {
		return -1
	}
	return int(p.owners[h%p.partitionCount])
}
