package ingester

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/promgov/promgov/internal/recovery"
	"github.com/promgov/promgov/pkg/clustertls"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Config configures the ingester's gRPC server and its leave sequence.
type Config struct {
	// ListenAddress is the host:port of the gRPC server. It is advertised in
	// the ring, so it must be reachable from distributors.
	ListenAddress string `yaml:"grpc_listen_address"`
	// AdvertiseAddress overrides the address advertised in the ring (for
	// example when listening on 0.0.0.0).
	AdvertiseAddress string `yaml:"grpc_advertise_address"`
	// MaxRecvMsgSize bounds one Push request.
	MaxRecvMsgSize int `yaml:"grpc_max_recv_msg_size"`
	// LeaveDrainPeriod is how long the ingester keeps serving after it has
	// announced LEAVING, so every distributor learns of it before pushes stop.
	LeaveDrainPeriod time.Duration `yaml:"leave_drain_period"`
	// MaxInflightPushRequests bounds the Push calls handled at once; more
	// are answered RESOURCE_EXHAUSTED before their message is read. 0: no bound.
	MaxInflightPushRequests int `yaml:"max_inflight_push_requests"`
	// MaxInflightPushBytes bounds the bytes of Push messages handled at
	// once; past it pushes are answered RESOURCE_EXHAUSTED. 0: no bound.
	MaxInflightPushBytes int64 `yaml:"max_inflight_push_bytes"`
	// TLS secures the gRPC server; with client certificates required, only
	// cluster members may push or call the cluster RPCs.
	TLS clustertls.ServerConfig `yaml:"grpc_server,omitempty"`
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		ListenAddress: ":9095", MaxRecvMsgSize: 100 << 20, LeaveDrainPeriod: 3 * time.Second,
		MaxInflightPushRequests: DefaultMaxInflightPushRequests, MaxInflightPushBytes: DefaultMaxInflightPushBytes,
	}
}

// RegisterFlags registers the gRPC server's flags under prefix (the binary
// uses "grpc."), with c's values as defaults (start from DefaultConfig).
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.ListenAddress, prefix+"listen-address", c.ListenAddress, "Address the ingester's gRPC Push server listens on; advertised in the ring (an empty or unspecified host is advertised on the gossip advertise IP).")
	fs.StringVar(&c.AdvertiseAddress, prefix+"advertise-address", c.AdvertiseAddress, "gRPC address to advertise in the ring instead of the listen address.")
	fs.IntVar(&c.MaxRecvMsgSize, prefix+"max-recv-msg-size", c.MaxRecvMsgSize, "Largest Push request the ingester accepts, in bytes.")
	c.TLS.RegisterFlags(prefix, fs)
}

// RegisterInstanceFlags registers the flags of the ingester as a whole (the
// leave sequence, the in-flight limits) under prefix (the binary uses
// "ingester."), with c's values as defaults.
func (c *Config) RegisterInstanceFlags(prefix string, fs *flag.FlagSet) {
	fs.DurationVar(&c.LeaveDrainPeriod, prefix+"leave-drain-period", c.LeaveDrainPeriod, "How long a leaving ingester keeps serving after announcing LEAVING, so distributors move its traffic first.")
	fs.IntVar(&c.MaxInflightPushRequests, prefix+"max-inflight-push-requests", c.MaxInflightPushRequests, "Most Push calls handled at once; more are answered RESOURCE_EXHAUSTED (429 with Retry-After to the sender) before their message is read. 0 means no bound.")
	fs.Int64Var(&c.MaxInflightPushBytes, prefix+"max-inflight-push-bytes", c.MaxInflightPushBytes, "Most bytes of Push messages handled at once; past it pushes are answered RESOURCE_EXHAUSTED (429 with Retry-After to the sender). 0 means no bound.")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		return fmt.Errorf("ingester.grpc_listen_address %q: %w; use host:port", c.ListenAddress, err)
	}
	if c.MaxRecvMsgSize <= 0 {
		return errors.New("ingester.grpc_max_recv_msg_size: must be positive")
	}
	if c.LeaveDrainPeriod < 0 {
		return errors.New("ingester.leave_drain_period: must not be negative")
	}
	if c.MaxInflightPushRequests < 0 {
		return fmt.Errorf("ingester.max_inflight_push_requests: %d is negative; set a positive bound or 0 for none", c.MaxInflightPushRequests)
	}
	if c.MaxInflightPushBytes < 0 {
		return fmt.Errorf("ingester.max_inflight_push_bytes: %d is negative; set a positive bound or 0 for none", c.MaxInflightPushBytes)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("ingester.grpc_server: %w", err)
	}
	return nil
}

// Server serves the Push API, the cluster service and gRPC health checking. It binds in
// NewServer, so the advertised address is known before the ring starts.
type Server struct {
	cfg    Config
	ln     net.Listener
	grpc   *grpc.Server
	health *health.Server
	svc    *Service
	lim    *inflightLimits
	logger *slog.Logger
}

// The receive windows of the ingester's connections and streams. Set, they
// are fixed. gRPC's default starts at 64 KiB and grows with the
// bandwidth-delay product it measures with a PING per burst of data
// received; on a short, fast link (a cluster's) that product stays small,
// so the window stays near 64 KiB and the ingester sends a WINDOW_UPDATE per
// 16 KiB received (a quarter of the window), for the connection and for the
// stream. A push of tens of KiB thus cost a PING, its answer and several
// window updates: frames, syscalls and wake-ups on both sides of every push.
// With fixed windows an update goes once per MiB received, and no PING.
// The connection window is the most the estimator may grow it to (16 MiB),
// so what one connection may hold unread is unchanged.
const (
	pushWindowSize     = 4 << 20
	pushConnWindowSize = 16 << 20
)

// NewServer binds the gRPC listener and registers svc and the health
// service. A call whose handler panics is answered Internal and counted in
// reg (internal/recovery) instead of killing the ingester.
func NewServer(cfg Config, svc *Service, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("listen on grpc.listen-address %s: %w", cfg.ListenAddress, err)
	}
	creds, err := cfg.TLS.ServerOption()
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	rec := recovery.New(logger, reg)
	lim := newInflightLimits(cfg.MaxInflightPushRequests, cfg.MaxInflightPushBytes, reg)
	// Pushes are read into pooled buffers, given back once answered
	// (ReleaseInterceptor, first in the chain).
	codec := ingesterv1.NewServerCodec()
	g := grpc.NewServer(
		creds,
		grpc.InTapHandle(lim.tap),
		grpc.StatsHandler(lim),
		grpc.ChainUnaryInterceptor(codec.ReleaseInterceptor(), rec.UnaryServerInterceptor(), lim.unary),
		grpc.ChainStreamInterceptor(rec.StreamServerInterceptor()),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.ForceServerCodecV2(codec), // PushRequest's batch read in place
		// Fixed flow-control windows (see pushWindowSize).
		grpc.InitialWindowSize(pushWindowSize),
		grpc.InitialConnWindowSize(pushConnWindowSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus(ingesterv1.IngesterService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	ingesterv1.RegisterIngesterServiceServer(g, &dataService{Service: svc, codec: codec, lim: lim})
	return &Server{cfg: cfg, ln: ln, grpc: g, health: hs, svc: svc, lim: lim, logger: logger}, nil
}

// RegisterCluster serves the cluster service (Analytics) beside Push on
// the same listener. Call it before Run: the ingester's ring name, which
// the cluster service reports, is known only once the ring started on the
// address this server bound.
func (s *Server) RegisterCluster(c ingesterv1.ClusterServiceServer) {
	ingesterv1.RegisterClusterServiceServer(s.grpc, c)
}

// Addr is the address to advertise in the ring.
func (s *Server) Addr() string {
	if s.cfg.AdvertiseAddress != "" {
		return s.cfg.AdvertiseAddress
	}
	return s.ln.Addr().String()
}

// SetServing switches both the Push service and gRPC health between
// serving and not serving.
func (s *Server) SetServing(on bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if on {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(ingesterv1.IngesterService_ServiceDesc.ServiceName, st)
	s.svc.Accept(on)
}

// Run serves until ctx is cancelled, then stops: pushes in flight are
// answered before it returns; streams and calls still open after that
// (the distributors' idle PushStreams, a cluster call) are cancelled.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(s.ln) }()
	s.logger.Info("gRPC server listening", "address", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve gRPC on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	s.SetServing(false)
	// Distributors keep PushStreams open between pushes, so a graceful
	// stop would wait for them. Every push in flight is answered first
	// (new ones are refused: not serving); what is still open then holds
	// no push and is closed: waiting for the distributors to close their
	// idle streams (they do after 2 s) only delays the stop. (That wait
	// also delayed a restarted ingester's distributors enough to expose a
	// handoff race, fixed in pkg/cluster: see Handoff.Run.)
	graceful := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(graceful) }()
	s.lim.drained(graceful)
	s.grpc.Stop()
	<-graceful
	// Stopped before the Serve goroutine got going, Serve answers
	// ErrServerStopped: that is this stop, not a failure.
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
