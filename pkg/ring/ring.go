package ring

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Gossip is a user of memberlist's gossip channel beside the membership
// (pkg/govsync carries "version N is active" notices and each node's active
// version on it). memberlist calls the methods from its own goroutines,
// concurrently with each other: implementations must be safe for that,
// return quickly and not call into the Ring's memberlist.
type Gossip interface {
	// NotifyMsg receives a user message a peer broadcast; b is only valid
	// during the call.
	NotifyMsg(b []byte)
	// GetBroadcasts returns messages to piggyback on gossip, within limit
	// bytes in all, each costing overhead bytes more.
	GetBroadcasts(overhead, limit int) [][]byte
	// LocalState is this node's state for a push/pull exchange.
	LocalState(join bool) []byte
	// MergeRemoteState merges a peer's LocalState.
	MergeRemoteState(b []byte, join bool)
}

// SetGossip makes g the user of the gossip channel (replacing any other).
func (r *Ring) SetGossip(g Gossip) { r.gossip.Store(&g) }

// NumMembers is the number of live members, this node included (for
// sizing gossip retransmissions).
func (r *Ring) NumMembers() int {
	if r.ml == nil {
		return 1
	}
	return r.ml.NumMembers()
}

// ErrClosed is returned by SetState and Run once the ring has left the
// cluster and shut down.
var ErrClosed = errors.New("ring is closed")

// Ring is this node's membership in the promgov cluster and the placement of
// metrics onto ACTIVE ingesters derived from it. All methods are safe for
// concurrent use.
type Ring struct {
	cfg      Config
	role     Role
	logger   *slog.Logger
	metrics  *ringMetrics
	ml       *memberlist.Memberlist
	bindAddr string
	page     *template.Template

	// meta is the encoded metadata NodeMeta hands to memberlist.
	meta      atomic.Pointer[[]byte]
	placement atomic.Pointer[Placement]
	// gossip is the user of the gossip channel beside the membership (nil
	// when none), see SetGossip.
	gossip atomic.Pointer[Gossip]

	// mu guards the fields below. It is taken inside memberlist's event
	// callbacks, so no memberlist method may be called while holding it.
	mu      sync.Mutex
	self    Member
	members map[string]Member
	active  []Member // ACTIVE ingesters the current placement was built from
	changed chan struct{}
	// membersChanged is closed (and replaced) whenever a member appears,
	// changes state or address, or goes (see MembersChanged).
	membersChanged chan struct{}

	// stale carries a previous address of this node's name that a peer
	// still holds, seen in a join's state exchange (capacity 1; see
	// announce.go).
	stale chan string

	// rebuild asks the rebuild loop to recompute the placement (capacity 1,
	// so bursts of membership events coalesce into one rebuild).
	rebuild  chan struct{}
	loopDone chan struct{}

	// stateMu serialises SetState and shutdown (both call into memberlist).
	stateMu  sync.Mutex
	stopped  bool
	running  atomic.Bool
	stopOnce sync.Once
	stopErr  error
	done     chan struct{}
}

// New creates the memberlist of this node and binds the gossip address at
// once (so BindAddress is known), but does not join the cluster: Run does.
// Ingesters start JOINING and need a grpcAddress; distributors start ACTIVE
// (they own nothing in any state). reg may be nil (no metrics registered),
// logger may be nil (discard). If Run is never called, call Close to release
// the socket.
func New(cfg Config, role Role, grpcAddress string, logger *slog.Logger, reg prometheus.Registerer) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new ring: %w", err)
	}
	state := StateActive
	switch role {
	case RoleIngester:
		if _, _, err := net.SplitHostPort(grpcAddress); err != nil {
			return nil, fmt.Errorf("new ring: ingester gRPC address %q: %w; pass the host:port the ingester serves on", grpcAddress, err)
		}
		state = StateJoining
	case RoleDistributor:
	default:
		return nil, fmt.Errorf("new ring: unknown role %q; use %q or %q", role, RoleIngester, RoleDistributor)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	meta, err := EncodeMeta(role, state, grpcAddress)
	if err != nil {
		return nil, fmt.Errorf("new ring: %w", err)
	}
	r := &Ring{
		cfg:      cfg,
		role:     role,
		logger:   logger,
		page:     template.Must(template.New("ring").Funcs(template.FuncMap{"mul100": func(f float64) float64 { return 100 * f }}).Parse(pageTemplate)),
		self:     Member{Role: role, State: state, GRPCAddress: grpcAddress},
		members:  make(map[string]Member),
		changed:  make(chan struct{}),
		rebuild:  make(chan struct{}, 1),
		stale:    make(chan string, 1),
		loopDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	r.membersChanged = make(chan struct{})
	r.meta.Store(&meta)
	empty, err := NewPlacement(cfg.placementConfig(), nil)
	if err != nil {
		return nil, fmt.Errorf("new ring: %w", err)
	}
	r.placement.Store(empty)
	r.metrics = newRingMetrics(r.healthScore)

	mlLogger := log.New(logBridge{logger: logger}, "", 0)
	transport, ip, port, err := bind(cfg.BindAddress, mlLogger)
	if err != nil {
		return nil, fmt.Errorf("new ring: %w", err)
	}
	r.bindAddr = net.JoinHostPort(ip, strconv.Itoa(port))
	if cfg.NodeName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "promgov"
		}
		cfg.NodeName = host + "-" + strconv.Itoa(port)
		r.cfg.NodeName = cfg.NodeName
	}
	r.self.Name = cfg.NodeName
	r.logger = logger.With("ring_node", cfg.NodeName)
	mlLogger.SetOutput(logBridge{logger: r.logger})

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = ip
	mc.BindPort = port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddress != "" {
		host, p, _ := net.SplitHostPort(cfg.AdvertiseAddress) // checked by Validate
		mc.AdvertiseAddr = host
		mc.AdvertisePort, _ = strconv.Atoi(p)
	}
	mc.Transport = transport
	mc.Delegate = delegate{r: r}
	mc.Events = delegate{r: r}
	mc.Merge = delegate{r: r}
	mc.Logger = mlLogger
	mc.Label = cfg.ClusterLabel
	mc.GossipInterval = cfg.GossipInterval
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = min(mc.ProbeTimeout, cfg.ProbeInterval/2)
	mc.PushPullInterval = cfg.PushPullInterval
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	if cfg.EncryptionKeyFile != "" {
		kr, err := loadKeyring(cfg.EncryptionKeyFile, cfg.EncryptionRotationKeyFiles)
		if err != nil {
			_ = transport.Shutdown()
			return nil, fmt.Errorf("new ring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}

	go r.rebuildLoop()
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = transport.Shutdown()
		r.stopLoop()
		return nil, fmt.Errorf("new ring: create memberlist: %w", err)
	}
	r.ml = ml
	// LocalNode takes memberlist's node lock, under which memberlist calls
	// observe, which takes r.mu: called with r.mu held it deadlocks with a
	// peer's join merged at the same moment.
	self := ml.LocalNode().Address()
	r.mu.Lock()
	r.self.Address = self
	r.mu.Unlock()
	if err := r.advertiseGRPCOn(ml.LocalNode().Addr); err != nil {
		_ = ml.Shutdown()
		r.stopLoop()
		return nil, fmt.Errorf("new ring: %w", err)
	}
	if err := r.metrics.register(reg); err != nil {
		_ = ml.Shutdown()
		r.stopLoop()
		return nil, fmt.Errorf("new ring: %w", err)
	}
	r.logger.Info("gossip bound", "role", role, "bind_address", r.bindAddr,
		"advertise_address", r.self.Address, "state", state)
	return r, nil
}

// advertiseGRPCOn replaces an ingester's gRPC address whose host is
// unspecified (":9095", "0.0.0.0:9095", "[::]:9095": listening on every
// interface) by ip, the address gossip advertises, so that distributors
// can dial it. It runs before the node joins anyone.
func (r *Ring) advertiseGRPCOn(ip net.IP) error {
	if r.role != RoleIngester {
		return nil
	}
	host, port, _ := net.SplitHostPort(r.self.GRPCAddress) // checked in New
	if h := net.ParseIP(host); host != "" && (h == nil || !h.IsUnspecified()) {
		return nil
	}
	addr := net.JoinHostPort(ip.String(), port)
	meta, err := EncodeMeta(r.role, r.self.State, addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.self.GRPCAddress = addr
	r.mu.Unlock()
	r.meta.Store(&meta)
	// memberlist read the metadata when it was created; nobody has joined
	// yet, so this update reaches every member that ever sees this node.
	if err := r.ml.UpdateNode(r.cfg.UpdateTimeout); err != nil {
		return fmt.Errorf("advertise gRPC address %s: %w", addr, err)
	}
	r.logger.Info("advertising the gRPC address on the gossip IP", "grpc_address", addr)
	return nil
}

// bind creates memberlist's network transport on addr ("host:port", port 0
// picks a free port) and returns it with the IP and port actually bound.
func bind(addr string, logger *log.Logger) (*memberlist.NetTransport, string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", 0, fmt.Errorf("bind %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", 0, fmt.Errorf("bind %q: port: %w", addr, err)
	}
	ip := host
	if host == "" {
		ip = "0.0.0.0"
	} else if net.ParseIP(host) == nil {
		ips, err := net.LookupIP(host)
		if err != nil {
			return nil, "", 0, fmt.Errorf("bind %q: resolve host: %w", addr, err)
		}
		if len(ips) == 0 {
			return nil, "", 0, fmt.Errorf("bind %q: host %q resolves to no address", addr, host)
		}
		ip = ips[0].String()
		for _, cand := range ips {
			if cand.To4() != nil {
				ip = cand.String()
				break
			}
		}
	}
	// With port 0 the TCP port the kernel picks may be taken for UDP; retry
	// like memberlist itself does.
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var lastErr error
	for range attempts {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, ip, nt.GetAutoBindPort(), nil
		}
		lastErr = err
	}
	return nil, "", 0, fmt.Errorf("bind %s: %w", net.JoinHostPort(ip, portStr), lastErr)
}

// Run joins the cluster (retrying with backoff in the background until one
// join succeeds; a node without join addresses is a seed) and blocks until
// ctx is cancelled or Close is called. It then advertises LEAVING, waits
// leave_drain_period, leaves the cluster and shuts gossip down.
func (r *Ring) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("ring: Run called twice")
	}
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	joinCtx, cancel := context.WithCancel(ctx)
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		r.join(joinCtx)
	}()
	select {
	case <-ctx.Done():
	case <-r.done:
	}
	cancel()
	err := r.stop(context.WithoutCancel(ctx))
	<-joined
	return err
}

// Close leaves the cluster and shuts gossip down like Run does when its
// context ends; ctx bounds the leave_drain_period wait. It is safe to call
// more than once and concurrently with Run.
func (r *Ring) Close(ctx context.Context) error { return r.stop(ctx) }

// join contacts the join addresses until one answers, then again every
// rejoin_interval, and sooner while a member still holds this node's name
// at a previous address (announce.go), until ctx ends.
func (r *Ring) join(ctx context.Context) {
	if len(r.cfg.Join) == 0 {
		r.logger.Info("no join addresses configured; this node is a seed and waits for others to join it")
		return
	}
	if !r.joinWithRetry(ctx) {
		return
	}
	var rejoin <-chan time.Time
	if r.cfg.RejoinInterval > 0 {
		t := time.NewTicker(r.cfg.RejoinInterval)
		defer t.Stop()
		rejoin = t.C
	}
	a := announcer{r: r, delay: r.cfg.JoinRetryInterval}
	defer a.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rejoin:
			before := r.ml.NumMembers()
			if r.rejoin(r.cfg.RejoinInterval) {
				if after := r.ml.NumMembers(); after > before {
					r.logger.Info("rejoin found members this node did not know", "members_before", before, "members", after)
				}
			}
		case prev := <-r.stale:
			a.stale(prev)
		case <-a.due():
			a.announce()
		}
	}
}

// rejoin contacts the join addresses once, reporting whether one answered.
// Join re-resolves the addresses and exchanges full state with each one it
// reaches: members it did not know merge into this group, and they take
// this node's current state.
func (r *Ring) rejoin(retryIn time.Duration) bool {
	n, err := r.ml.Join(r.cfg.Join)
	if n == 0 {
		r.metrics.joins.WithLabelValues("failure").Inc()
		r.logger.Warn("rejoining cluster failed; will try again", "join", strings.Join(r.cfg.Join, ","),
			"retry_in", retryIn, "err", err)
		return false
	}
	r.metrics.joins.WithLabelValues("success").Inc()
	return true
}

// joinWithRetry contacts the join addresses until one answers (true) or ctx
// ends (false).
func (r *Ring) joinWithRetry(ctx context.Context) bool {
	delay := r.cfg.JoinRetryInterval
	for attempt := 1; ; attempt++ {
		n, err := r.ml.Join(r.cfg.Join)
		if n > 0 {
			r.metrics.joins.WithLabelValues("success").Inc()
			r.logger.Info("joined cluster", "contacted", n, "members", r.ml.NumMembers(), "attempt", attempt)
			return true
		}
		r.metrics.joins.WithLabelValues("failure").Inc()
		if ctx.Err() != nil {
			return false
		}
		r.logger.Warn("joining cluster failed; retrying", "join", strings.Join(r.cfg.Join, ","),
			"attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, r.cfg.JoinRetryMaxInterval)
	}
}

// stop advertises LEAVING, drains, leaves and shuts memberlist down, once.
func (r *Ring) stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.stateMu.Lock()
		defer r.stateMu.Unlock()
		if r.setLocalState(StateLeaving) {
			if err := r.ml.UpdateNode(r.cfg.UpdateTimeout); err != nil {
				r.logger.Warn("broadcasting LEAVING timed out; leaving anyway", "err", err)
			}
		}
		if d := r.cfg.LeaveDrainPeriod; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if err := r.ml.Leave(r.cfg.LeaveTimeout); err != nil {
			r.logger.Warn("leave broadcast not confirmed; other members will detect the departure by probing", "err", err)
		}
		if err := r.ml.Shutdown(); err != nil {
			r.stopErr = fmt.Errorf("shutdown memberlist: %w", err)
		}
		r.stopped = true
		r.stopLoop()
		r.logger.Info("left cluster")
	})
	return r.stopErr
}

// SetState changes the state this node advertises (an ingester goes
// JOINING → ACTIVE once ready, and → LEAVING to drain before shutdown) and
// broadcasts it, waiting up to update_timeout for the broadcast to go out.
// A broadcast timeout is only logged: the change is applied locally and still
// spreads by gossip. It returns ErrClosed after the ring shut down.
func (r *Ring) SetState(s State) error {
	if !s.Valid() {
		return fmt.Errorf("set state: unknown state %q; use %s, %s or %s", s, StateJoining, StateActive, StateLeaving)
	}
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if r.stopped {
		return fmt.Errorf("set state %s: %w", s, ErrClosed)
	}
	if !r.setLocalState(s) {
		return nil
	}
	if err := r.ml.UpdateNode(r.cfg.UpdateTimeout); err != nil {
		r.logger.Warn("state change not confirmed broadcast yet; gossip keeps spreading it", "state", s, "err", err)
	}
	r.logger.Info("ring state changed", "state", s)
	return nil
}

// setLocalState updates the advertised metadata; it reports whether the
// state changed. memberlist picks it up through NodeMeta on UpdateNode.
func (r *Ring) setLocalState(s State) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.self.State == s {
		return false
	}
	meta, err := EncodeMeta(r.role, s, r.self.GRPCAddress)
	if err != nil {
		// Role, state and address were validated in New.
		r.logger.Error("encoding ring metadata failed", "err", err)
		return false
	}
	r.meta.Store(&meta)
	r.self.State = s
	return true
}

// healthScore reads memberlist's awareness score for the gauge.
func (r *Ring) healthScore() float64 {
	if r.ml == nil {
		return 0
	}
	return float64(r.ml.GetHealthScore())
}

// Self returns this node as it advertises itself.
func (r *Ring) Self() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.self
}

// Members returns the live members this node knows of, sorted by name.
func (r *Ring) Members() []Member {
	r.mu.Lock()
	out := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Placement returns the current placement snapshot; never nil. It is
// replaced, never modified, when the set of ACTIVE ingesters changes.
func (r *Ring) Placement() *Placement { return r.placement.Load() }

// Changed returns a channel that is closed at the next placement change.
// Call it again after it fired to wait for the following one.
func (r *Ring) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// MembersChanged returns a channel that is closed at the next change of
// the member table (a member appears, changes state or address, or goes),
// whether or not it changes the placement: e.g. an ingester first seen
// already LEAVING, whose ACTIVE spell this node never heard of. Call it
// again after it fired to wait for the following one.
func (r *Ring) MembersChanged() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.membersChanged
}

// BindAddress returns the host:port gossip is bound to, with port 0 resolved.
func (r *Ring) BindAddress() string { return r.bindAddr }
