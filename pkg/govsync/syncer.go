package govsync

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
)

// ApplyFunc makes doc this node's governance configuration. It is called
// by one goroutine at a time; on error the node's running configuration
// must stay as it was.
type ApplyFunc func(doc govstore.Document) error

// Members is the cluster membership the status is joined with. Safe for
// concurrent use.
type Members interface {
	Members() []ring.Member
	NumMembers() int
}

// Options configure a Syncer.
type Options struct {
	// Node and Role name this node.
	Node, Role string
	// PollInterval and Timeout are governance.poll_interval and .timeout.
	PollInterval, Timeout time.Duration
	Logger                *slog.Logger
	Registerer            prometheus.Registerer
	// OnActive, if set, is called after this node applied a newly active
	// version (the automatic-rollback Guard watches it).
	OnActive func(v *govstore.Version)
}

// Syncer keeps this node on the store's active version. It implements
// ring.Gossip; all methods are safe for concurrent use.
type Syncer struct {
	store   *govstore.Store
	apply   ApplyFunc
	members Members
	opts    Options
	queue   *memberlist.TransmitLimitedQueue
	kick    chan struct{}
	now     func() time.Time

	reconcileMu sync.Mutex // one apply at a time

	mu            sync.Mutex
	self          NodeState
	shadowRun     *govstore.ShadowRun // what of self.Shadow runs here
	nodes         map[string]NodeState
	desired       uint64 // the store's active version at the last resolve
	desiredShadow uint64 // and its shadow candidate (0: none)

	active   prometheus.Gauge
	shadow   prometheus.Gauge
	failures prometheus.Counter
	storeErr prometheus.Counter
}

// New returns a Syncer; call Run to start it and register it with the
// ring's SetGossip.
func New(store *govstore.Store, apply ApplyFunc, members Members, opts Options) *Syncer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{store: store, apply: apply, members: members, opts: opts, kick: make(chan struct{}, 1), now: time.Now,
		self:  NodeState{Node: opts.Node, Role: opts.Role},
		nodes: make(map[string]NodeState),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "promgov_config_active_version",
			Help: "The governance store version this node runs (0: none yet, the file's governance sections run)."}),
		shadow: prometheus.NewGauge(prometheus.GaugeOpts{Name: "promgov_config_shadow_version",
			Help: "The shadow candidate version running beside the active one on this node (0: none)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "promgov_config_version_load_failures_total",
			Help: "Governance versions this node could not apply (it kept the previous one and marked the version failed)."}),
		storeErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "promgov_config_store_errors_total",
			Help: "Reads of the governance store that failed (the active version stays)."}),
	}
	s.queue = &memberlist.TransmitLimitedQueue{NumNodes: members.NumMembers, RetransmitMult: 8}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.active, s.shadow, s.failures, s.storeErr)
	}
	return s
}

// Run applies the store's active version now and then whenever a gossip
// notice arrives or the poll interval passes, until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		s.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-t.C:
		}
	}
}

// Notify tells the cluster that version n is active (after a write on this
// node) and reconciles this node at once.
func (s *Syncer) Notify(n uint64) {
	b, _ := json.Marshal(message{Kind: kindActive, Version: n})
	s.queue.QueueBroadcast(&broadcast{key: kindActive, msg: b})
	s.wake()
}

func (s *Syncer) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Reconcile resolves the store and applies its active version if this
// node runs another. A store that cannot be read leaves the node as it is.
func (s *Syncer) Reconcile(ctx context.Context) {
	s.reconcileMu.Lock()
	defer s.reconcileMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	st, err := s.store.Resolve(ctx)
	if err != nil {
		s.storeErr.Inc()
		s.opts.Logger.Warn("governance store unreadable; keeping the active version", "version", s.Self().Version, "err", err)
		return
	}
	for _, e := range st.Corrupt {
		s.opts.Logger.Error("governance store holds a corrupted version; it is skipped", "err", e)
	}
	if st.Active == nil {
		return
	}
	var shadowN uint64
	if st.Shadow != nil {
		shadowN = st.Shadow.Number
	}
	s.mu.Lock()
	s.desired, s.desiredShadow = st.Active.Number, shadowN
	cur, curShadow := s.self.Version, s.self.Shadow
	s.mu.Unlock()
	if st.Active.Number == cur && shadowN == curShadow {
		// Say again what this node runs: a peer that asked (a notice) may
		// have missed the broadcast (gossip is UDP; push/pull repairs it
		// only every memberlist.push_pull_interval).
		s.setSelf(func(*NodeState) {})
		return
	}
	v := st.Active
	doc, err := govstore.ParseDocument([]byte(v.Body))
	if err == nil && st.Shadow != nil {
		if s.applyShadow(ctx, v, doc, st.Shadow, cur) {
			return
		}
		if v.Number == cur && curShadow == 0 {
			return
		}
	}
	if err == nil {
		err = s.apply(doc)
	}
	if err != nil {
		s.fail(ctx, v, cur, err)
		return
	}
	s.active.Set(float64(v.Number))
	s.shadow.Set(0)
	s.setSelf(func(n *NodeState) { n.Version, n.Hash, n.Shadow, n.Error = v.Number, v.Hash, 0, "" })
	s.mu.Lock()
	s.shadowRun = nil
	s.mu.Unlock()
	s.opts.Logger.Info("governance version applied", "version", v.Number, "hash", v.Hash, "author", v.Author, "previous", cur)
	s.activated(v, cur)
}

func (s *Syncer) activated(v *govstore.Version, cur uint64) {
	if v.Number != cur && s.opts.OnActive != nil {
		s.opts.OnActive(v)
	}
}

// applyShadow runs the active version v with the shadow candidate sh beside
// it (govstore.WithShadow). It reports whether that now runs; when the
// candidate cannot be applied it is marked failed (the node keeps what it
// ran, and the caller makes v run alone).
func (s *Syncer) applyShadow(ctx context.Context, v *govstore.Version, doc govstore.Document, sh *govstore.Version, cur uint64) bool {
	cand, err := govstore.ParseDocument([]byte(sh.Body))
	var run govstore.ShadowRun
	if err == nil {
		var merged govstore.Document
		merged, run = govstore.WithShadow(doc, cand, sh.Number)
		err = s.apply(merged)
	}
	if err != nil {
		s.fail(ctx, sh, cur, err)
		return false
	}
	s.active.Set(float64(v.Number))
	s.shadow.Set(float64(sh.Number))
	s.setSelf(func(n *NodeState) { n.Version, n.Hash, n.Shadow, n.Error = v.Number, v.Hash, sh.Number, "" })
	s.mu.Lock()
	s.shadowRun = &run
	s.mu.Unlock()
	s.activated(v, cur)
	s.opts.Logger.Info("governance version applied with a shadow candidate", "version", v.Number, "shadow_version", sh.Number,
		"shadow_rules", len(run.Rules), "shadow_limits", run.Limits, "shadow_drop_unused", run.DropUnused, "not_shadowed", len(run.NotShadowed))
	return true
}

// fail records that version v could not be applied: this node keeps what
// it runs, v is marked failed in the store and every node resolves again.
func (s *Syncer) fail(ctx context.Context, v *govstore.Version, cur uint64, err error) {
	s.failures.Inc()
	s.opts.Logger.Error("cannot apply governance version; keeping the running one and marking it failed",
		"version", v.Number, "mode", v.Mode, "running", cur, "err", err)
	s.setSelf(func(n *NodeState) { n.Error = fmt.Sprintf("version %d: %v", v.Number, err) })
	if merr := s.store.MarkFailed(ctx, v.Number, s.opts.Node, err.Error()); merr != nil {
		s.opts.Logger.Error("cannot mark the governance version failed", "version", v.Number, "err", merr)
		return
	}
	s.Notify(v.Number) // every node resolves again, past the failed version
}

// setSelf changes this node's state and gossips it.
func (s *Syncer) setSelf(f func(*NodeState)) {
	s.mu.Lock()
	f(&s.self)
	s.self.Updated = s.now().UnixMilli()
	self := s.self
	s.nodes[self.Node] = self
	s.mu.Unlock()
	b, _ := json.Marshal(message{Kind: kindNode, State: &self})
	s.queue.QueueBroadcast(&broadcast{key: kindNode + "/" + self.Node, msg: b})
}

// Self is this node's state.
func (s *Syncer) Self() NodeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

// merge keeps the newer of a known and a received node state. A peer
// that runs a newer version than this node makes it resolve the store:
// the anti-entropy for a notice this node missed (it joined later, or the
// notice's retransmissions ran out).
func (s *Syncer) merge(n NodeState) {
	if n.Node == s.opts.Node {
		return
	}
	s.mu.Lock()
	newer := n.Version > s.self.Version || n.Version == s.self.Version && n.Shadow > s.self.Shadow
	old, ok := s.nodes[n.Node]
	if !ok && len(s.nodes) >= maxNodes || ok && old.Updated >= n.Updated {
		s.mu.Unlock()
		return
	}
	s.nodes[n.Node] = n
	s.mu.Unlock()
	if newer {
		s.wake()
	}
}

// NotifyMsg implements ring.Gossip.
func (s *Syncer) NotifyMsg(b []byte) {
	m, err := decodeMessage(b)
	if err != nil {
		s.opts.Logger.Debug("dropping a governance gossip message", "err", err)
		return
	}
	switch m.Kind {
	case kindActive:
		// Even a notice of the version this node runs: it may have been
		// marked failed since (the rejecting node notifies again).
		s.wake()
	case kindNode:
		s.merge(*m.State)
	}
}

// GetBroadcasts implements ring.Gossip.
func (s *Syncer) GetBroadcasts(overhead, limit int) [][]byte {
	return s.queue.GetBroadcasts(overhead, limit)
}

// LocalState implements ring.Gossip: every node state this node knows.
func (s *Syncer) LocalState(bool) []byte {
	s.mu.Lock()
	states := make([]NodeState, 0, len(s.nodes)+1)
	states = append(states, s.self)
	for _, n := range s.nodes {
		if n.Node != s.self.Node {
			states = append(states, n)
		}
	}
	s.mu.Unlock()
	b, _ := json.Marshal(states)
	return b
}

// MergeRemoteState implements ring.Gossip.
func (s *Syncer) MergeRemoteState(b []byte, _ bool) {
	states, err := decodeState(b)
	if err != nil {
		s.opts.Logger.Debug("dropping a governance gossip state", "err", err)
		return
	}
	for _, n := range states {
		if n.Node != "" {
			s.merge(n)
		}
	}
}

// Status is the body of GET /promgov/api/v1/status/config.
type Status struct {
	// Self is the node that answered.
	Self string `json:"self"`
	// Active is the store's active version as last resolved by this node.
	Active uint64 `json:"active_version"`
	// Shadow is the shadow candidate staged over Active (0: none), and
	// ShadowRun what of it runs on the answering node.
	Shadow    uint64              `json:"shadow_version,omitempty"`
	ShadowRun *govstore.ShadowRun `json:"shadow_run,omitempty"`
	// Nodes is every live member's state, sorted by name.
	Nodes []NodeState `json:"nodes"`
	// Laggards are the members not on Active.
	Laggards []string `json:"laggards"`
}

// Status is the cluster's rollout as this node sees it (a Status).
func (s *Syncer) Status() any { return s.ClusterStatus() }

// ClusterStatus is the cluster's rollout as this node sees it.
func (s *Syncer) ClusterStatus() Status {
	members := s.members.Members()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Self: s.self.Node, Active: s.desired, Shadow: s.desiredShadow, ShadowRun: s.shadowRun, Nodes: []NodeState{}, Laggards: []string{}}
	for _, m := range members {
		n, ok := s.nodes[m.Name]
		if m.Name == s.self.Node {
			n, ok = s.self, true
		}
		if !ok {
			n = NodeState{Node: m.Name, Role: string(m.Role)}
		}
		st.Nodes = append(st.Nodes, n)
		if n.Version != s.desired || n.Shadow != s.desiredShadow {
			st.Laggards = append(st.Laggards, m.Name)
		}
	}
	slices.SortFunc(st.Nodes, func(a, b NodeState) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	slices.Sort(st.Laggards)
	return st
}
