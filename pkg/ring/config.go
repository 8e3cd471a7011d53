package ring

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures gossip membership and placement. Placement fields
// (partition_count, replication_factor, load) must be identical on every
// member, or members compute different placements.
type Config struct {
	// BindAddress is the host:port gossip binds to (TCP and UDP). Port 0 picks
	// a free port (see Ring.BindAddress).
	BindAddress string `yaml:"bind_address"`
	// AdvertiseAddress is the ip:port other members reach this node on; empty
	// means the bind address (or a private IP when bound to 0.0.0.0).
	AdvertiseAddress string `yaml:"advertise_address"`
	// Join lists host:port addresses of members to join. Empty makes this node
	// a seed that waits for others to join it.
	Join []string `yaml:"join"`
	// NodeName is the unique member name; empty means hostname + "-" + the
	// bound gossip port.
	NodeName string `yaml:"node_name"`
	// ClusterLabel, when set, keeps clusters with different labels apart.
	// All members must use the same label.
	ClusterLabel string `yaml:"cluster_label"`

	// PartitionCount is the number of partitions (a prime spreads keys best).
	PartitionCount int `yaml:"partition_count"`
	// Load is the consistent-hashing bounded-load factor (> 1).
	Load float64 `yaml:"load"`
	// ReplicationFactor is the number of virtual nodes per ingester (>= 2).
	ReplicationFactor int `yaml:"replication_factor"`

	// GossipInterval is how often state changes are gossiped.
	GossipInterval time.Duration `yaml:"gossip_interval"`
	// ProbeInterval is how often a random member is probed for failure.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// PushPullInterval is how often full state is exchanged with a random
	// member (repairs anything gossip missed).
	PushPullInterval time.Duration `yaml:"push_pull_interval"`
	// JoinRetryInterval is the first delay between join attempts; it doubles
	// up to JoinRetryMaxInterval until one join succeeds.
	JoinRetryInterval time.Duration `yaml:"join_retry_interval"`
	// JoinRetryMaxInterval caps the join retry delay.
	JoinRetryMaxInterval time.Duration `yaml:"join_retry_max_interval"`
	// RejoinInterval is how often a member that has joined contacts the
	// join addresses again (re-resolving DNS names), so that groups which
	// formed apart — e.g. every pod of a new install started at once and
	// each resolved only itself — merge. 0 disables it.
	RejoinInterval time.Duration `yaml:"rejoin_interval"`
	// UpdateTimeout bounds how long SetState waits for the state change to
	// be broadcast.
	UpdateTimeout time.Duration `yaml:"update_timeout"`
	// LeaveDrainPeriod is how long a leaving member waits after advertising
	// LEAVING before it leaves, so in-flight batches routed to it can finish.
	// 0 leaves at once.
	LeaveDrainPeriod time.Duration `yaml:"leave_drain_period"`
	// LeaveTimeout bounds how long the leave message may take to broadcast.
	LeaveTimeout time.Duration `yaml:"leave_timeout"`
	// EncryptionKeyFile holds the primary gossip encryption key (base64 of
	// 16, 24 or 32 bytes: AES-128/192/256); every member must hold the
	// keys in use. Empty: gossip is not encrypted.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// EncryptionRotationKeyFiles hold further keys accepted for incoming
	// gossip while a new primary key is rolled out (docs/security.md).
	EncryptionRotationKeyFiles []string `yaml:"encryption_rotation_key_files"`
	// DeadNodeReclaimTime is how long after a member failed (not left) its
	// name may be reused from another address, e.g. by a restarted pod with
	// a new IP. 0 never allows it.
	DeadNodeReclaimTime time.Duration `yaml:"dead_node_reclaim_time"`
}

// DefaultBindAddress is the gossip address when the binary sets none: every
// interface, advertised on a private IP (the distributor's port; ingesters
// use :7947 so that both run on one host).
const DefaultBindAddress = ":7946"

// DefaultConfig returns the defaults also used by RegisterFlags.
func DefaultConfig() Config {
	return Config{
		BindAddress:          DefaultBindAddress,
		PartitionCount:       271,
		Load:                 1.25,
		ReplicationFactor:    20,
		GossipInterval:       200 * time.Millisecond,
		ProbeInterval:        time.Second,
		PushPullInterval:     10 * time.Second,
		JoinRetryInterval:    500 * time.Millisecond,
		JoinRetryMaxInterval: 10 * time.Second,
		RejoinInterval:       time.Minute,
		UpdateTimeout:        2 * time.Second,
		LeaveDrainPeriod:     0,
		LeaveTimeout:         5 * time.Second,
		DeadNodeReclaimTime:  10 * time.Second,
	}
}

// RegisterFlags registers every field on fs as prefix+name with the values of
// DefaultConfig as defaults (the binaries use the prefix "memberlist."),
// except the bind address, which defaults to c.BindAddress when the binary
// set one before (each binary has its own port).
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	if c.BindAddress != "" {
		d.BindAddress = c.BindAddress
	}
	fs.StringVar(&c.BindAddress, prefix+"bind-address", d.BindAddress, "host:port to bind gossip (TCP and UDP) to; an empty host is every interface (advertised on a private IP, or set --memberlist.advertise-address); port 0 picks a free port.")
	fs.StringVar(&c.AdvertiseAddress, prefix+"advertise-address", d.AdvertiseAddress, "ip:port other members reach this node on (default: the bind address).")
	c.Join = d.Join
	fs.Var((*joinList)(&c.Join), prefix+"join", "Comma-separated host:port list of members to join (empty: this node is a seed).")
	fs.StringVar(&c.NodeName, prefix+"node-name", d.NodeName, "Unique member name (default: hostname-<gossip port>).")
	fs.StringVar(&c.ClusterLabel, prefix+"cluster-label", d.ClusterLabel, "Label that keeps clusters apart; all members must use the same one.")
	fs.IntVar(&c.PartitionCount, prefix+"partition-count", d.PartitionCount, "Number of partitions (same on all members; a prime is best).")
	fs.Float64Var(&c.Load, prefix+"load", d.Load, "Consistent hashing bounded-load factor, > 1 (same on all members).")
	fs.IntVar(&c.ReplicationFactor, prefix+"replication-factor", d.ReplicationFactor, "Virtual nodes per ingester on the hash ring, >= 2 (same on all members).")
	fs.DurationVar(&c.GossipInterval, prefix+"gossip-interval", d.GossipInterval, "How often state changes are gossiped.")
	fs.DurationVar(&c.ProbeInterval, prefix+"probe-interval", d.ProbeInterval, "How often a random member is probed for failure.")
	fs.DurationVar(&c.PushPullInterval, prefix+"push-pull-interval", d.PushPullInterval, "How often full state is exchanged with a random member.")
	fs.DurationVar(&c.JoinRetryInterval, prefix+"join-retry-interval", d.JoinRetryInterval, "First delay between join attempts (doubles up to join-retry-max-interval).")
	fs.DurationVar(&c.JoinRetryMaxInterval, prefix+"join-retry-max-interval", d.JoinRetryMaxInterval, "Maximum delay between join attempts.")
	fs.DurationVar(&c.RejoinInterval, prefix+"rejoin-interval", d.RejoinInterval, "How often a joined member contacts the join addresses again, so groups that formed apart merge (0: never).")
	fs.DurationVar(&c.UpdateTimeout, prefix+"update-timeout", d.UpdateTimeout, "How long a state change waits to be broadcast.")
	fs.DurationVar(&c.LeaveDrainPeriod, prefix+"leave-drain-period", d.LeaveDrainPeriod, "How long to stay LEAVING before leaving the cluster (0: leave at once).")
	fs.DurationVar(&c.LeaveTimeout, prefix+"leave-timeout", d.LeaveTimeout, "How long the leave message may take to broadcast.")
	fs.StringVar(&c.EncryptionKeyFile, prefix+"encryption-key-file", "", "File with the primary gossip encryption key (base64 of 16, 24 or 32 random bytes, e.g. `openssl rand -base64 32`); gossip from members without a key in use is dropped. Empty: gossip is not encrypted.")
	fs.Var((*joinList)(&c.EncryptionRotationKeyFiles), prefix+"encryption-rotation-key-files", "Comma-separated files with further gossip keys accepted during a key rotation.")
	fs.DurationVar(&c.DeadNodeReclaimTime, prefix+"dead-node-reclaim-time", d.DeadNodeReclaimTime, "How long after a member failed its name may rejoin from another address (0: never).")
}

// Validate reports the first configuration error, naming the yaml field and
// the fix.
func (c *Config) Validate() error {
	if err := validateHostPort(c.BindAddress, false); err != nil {
		return fmt.Errorf("memberlist.bind_address %q: %w; use host:port such as 0.0.0.0:7946 (port 0 picks a free port)", c.BindAddress, err)
	}
	if c.AdvertiseAddress != "" {
		if err := validateHostPort(c.AdvertiseAddress, true); err != nil {
			return fmt.Errorf("memberlist.advertise_address %q: %w; use ip:port such as 10.0.0.5:7946 or leave it empty", c.AdvertiseAddress, err)
		}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("memberlist.join[%d] %q: %w; use host:port", i, j, err)
		}
	}
	if len(c.EncryptionRotationKeyFiles) > 0 && c.EncryptionKeyFile == "" {
		return errors.New("memberlist.encryption_rotation_key_files: set, but encryption_key_file is empty; name the primary key too")
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{len(c.ClusterLabel) > memberlist.LabelMaxSize, fmt.Sprintf("memberlist.cluster_label: longer than %d bytes; shorten it", memberlist.LabelMaxSize)},
		{c.PartitionCount < 1 || c.PartitionCount > 1<<20, "memberlist.partition_count: must be in [1, 1048576]; the default 271 suits up to ~100 ingesters"},
		{!(c.Load > 1) || c.Load > 100, "memberlist.load: must be > 1 (and <= 100), e.g. 1.25; with load <= 1 consistent hashing cannot place every partition"},
		{c.ReplicationFactor < 2 || c.ReplicationFactor > 1000, "memberlist.replication_factor: must be in [2, 1000], e.g. 20"},
		{c.GossipInterval <= 0, "memberlist.gossip_interval: must be > 0, e.g. 200ms"},
		{c.ProbeInterval <= 0, "memberlist.probe_interval: must be > 0, e.g. 1s"},
		{c.PushPullInterval <= 0, "memberlist.push_pull_interval: must be > 0, e.g. 10s"},
		{c.JoinRetryInterval <= 0, "memberlist.join_retry_interval: must be > 0, e.g. 500ms"},
		{c.JoinRetryMaxInterval < c.JoinRetryInterval, "memberlist.join_retry_max_interval: must be >= join_retry_interval, e.g. 10s"},
		{c.RejoinInterval < 0, "memberlist.rejoin_interval: must be >= 0 (0 = never), e.g. 1m"},
		{c.UpdateTimeout <= 0, "memberlist.update_timeout: must be > 0, e.g. 2s"},
		{c.LeaveDrainPeriod < 0, "memberlist.leave_drain_period: must be >= 0 (0 = leave at once)"},
		{c.LeaveTimeout <= 0, "memberlist.leave_timeout: must be > 0, e.g. 5s"},
		{c.DeadNodeReclaimTime < 0, "memberlist.dead_node_reclaim_time: must be >= 0 (0 = never), e.g. 10s"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

// placementConfig returns the placement part of c.
func (c *Config) placementConfig() PlacementConfig {
	return PlacementConfig{PartitionCount: c.PartitionCount, ReplicationFactor: c.ReplicationFactor, Load: c.Load}
}

// validateHostPort checks a host:port; needIP requires the host to be an IP
// literal (memberlist advertises IPs only).
func validateHostPort(s string, needIP bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number in [0, 65535]", port)
	}
	if needIP && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q is not an IP address", host)
	}
	if needIP && p == 0 {
		return errors.New("port must not be 0")
	}
	return nil
}

// joinList is the flag.Value of Config.Join: a comma-separated list.
type joinList []string

var _ flag.Value = (*joinList)(nil)

// String returns the list joined by commas.
func (j *joinList) String() string {
	if j == nil {
		return ""
	}
	return strings.Join(*j, ",")
}

// Set replaces the list with the comma-separated addresses in s (empty
// elements are dropped).
func (j *joinList) Set(s string) error {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	*j = out
	return nil
}
