package ingester

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Defaults of the instance limits (Config.MaxInflightPush*).
const (
	DefaultMaxInflightPushRequests = 2000
	DefaultMaxInflightPushBytes    = 256 << 20
)

// inflightLimits bounds the Push calls an ingester handles at once and the
// bytes their messages hold, answering RESOURCE_EXHAUSTED (backpressure:
// 429 with Retry-After at the distributor) past either bound:
//
//   - a new Push stream is refused before its message is read while either
//     bound is reached (tap), so a burst costs the refused callers nothing
//     here; Push calls that arrive together may pass that check together,
//     by as many as arrive between it and the count (stats.Begin);
//   - a Push whose message would take the bytes in flight over the bound is
//     refused before it is governed or logged (unless it is alone: the
//     size limits, not load, refuse a single oversized message).
//
// Safe for concurrent use.
type inflightLimits struct {
	maxRequests, maxBytes int64
	requests, bytes       atomic.Int64
	rejected              *prometheus.CounterVec
}

func newInflightLimits(maxRequests int, maxBytes int64, reg prometheus.Registerer) *inflightLimits {
	l := &inflightLimits{maxRequests: int64(maxRequests), maxBytes: maxBytes}
	f := promauto.With(reg)
	l.rejected = f.NewCounterVec(prometheus.CounterOpts{
		Name: "promgov_ingester_instance_limit_rejections_total",
		Help: "Push calls answered RESOURCE_EXHAUSTED because an instance limit was reached, by limit (max_inflight_push_requests, max_inflight_push_bytes).",
	}, []string{"limit"})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_ingester_inflight_push_requests",
		Help: "Push calls being handled (what -ingester.max-inflight-push-requests bounds).",
	}, func() float64 { return float64(l.requests.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_ingester_inflight_push_bytes",
		Help: "Bytes of Push messages being handled (what -ingester.max-inflight-push-bytes bounds).",
	}, func() float64 { return float64(l.bytes.Load()) })
	return l
}

// tap is a grpc.InTapHandle: it runs when a call's headers arrive, before
// its message is read.
func (l *inflightLimits) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != ingesterv1.IngesterService_Push_FullMethodName {
		return ctx, nil
	}
	if n := l.requests.Load(); l.maxRequests > 0 && n >= l.maxRequests {
		return ctx, l.refuse("max_inflight_push_requests", fmt.Sprintf("the ingester handles %d pushes, its limit (-ingester.max-inflight-push-requests)", n))
	}
	if n := l.bytes.Load(); l.maxBytes > 0 && n >= l.maxBytes {
		return ctx, l.refuse("max_inflight_push_bytes", fmt.Sprintf("the ingester holds %d bytes of pushes, its limit (-ingester.max-inflight-push-bytes=%d)", n, l.maxBytes))
	}
	return ctx, nil
}

func (l *inflightLimits) refuse(limit, why string) error {
	l.rejected.WithLabelValues(limit).Inc()
	return status.Errorf(codes.ResourceExhausted, "ingester overloaded: %s; retry later", why)
}

// unary is a grpc.UnaryServerInterceptor holding a Push's message size in
// the byte count while it is handled.
func (l *inflightLimits) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, ok := req.(*ingesterv1.PushRequest)
	if !ok {
		return handler(ctx, req)
	}
	size, err := l.holdBytes(p)
	if err != nil {
		return nil, err
	}
	defer l.bytes.Add(-size)
	return handler(ctx, req)
}

// holdBytes adds p's message size to the bytes in flight, or refuses p
// when that would pass the bound (unless p is alone: the size limits, not
// load, refuse a single oversized message). The caller subtracts size
// once p is answered.
func (l *inflightLimits) holdBytes(p *ingesterv1.PushRequest) (size int64, err error) {
	size = int64(len(p.GetSeries()) + len(p.GetRequest()))
	if n := l.bytes.Add(size); l.maxBytes > 0 && n > l.maxBytes && n != size {
		l.bytes.Add(-size)
		return 0, l.refuse("max_inflight_push_bytes", fmt.Sprintf("the ingester holds %d bytes of pushes and this one has %d, over -ingester.max-inflight-push-bytes=%d", n-size, size, l.maxBytes))
	}
	return size, nil
}

// admit counts a push that arrives on a PushStream, which the per-call
// hooks (tap, unary, the stats handler) do not see: it is refused like a
// new Push call past the request bound and like a unary one past the byte
// bound. done must be called once the push is answered.
func (l *inflightLimits) admit(p *ingesterv1.PushRequest) (done func(), err error) {
	if n := l.requests.Add(1); l.maxRequests > 0 && n > l.maxRequests {
		l.requests.Add(-1)
		return nil, l.refuse("max_inflight_push_requests", fmt.Sprintf("the ingester handles %d pushes, its limit (-ingester.max-inflight-push-requests)", n-1))
	}
	size, err := l.holdBytes(p)
	if err != nil {
		l.requests.Add(-1)
		return nil, err
	}
	return func() { l.bytes.Add(-size); l.requests.Add(-1) }, nil
}

// drainPoll is how often drained looks at the pushes in flight.
const drainPoll = 5 * time.Millisecond

// drained returns once no push is in flight, or when done is closed.
func (l *inflightLimits) drained(done <-chan struct{}) {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for l.requests.Load() > 0 {
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// pushKey marks the context of a Push call for the stats handler.
type pushKey struct{}

// TagRPC implements stats.Handler.
func (l *inflightLimits) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if info.FullMethodName == ingesterv1.IngesterService_Push_FullMethodName {
		return context.WithValue(ctx, pushKey{}, true)
	}
	return ctx
}

// HandleRPC implements stats.Handler: a Push counts from its Begin to its
// End, which gRPC pairs for every call it handles.
func (l *inflightLimits) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if ctx.Value(pushKey{}) == nil {
		return
	}
	switch s.(type) {
	case *stats.Begin:
		l.requests.Add(1)
	case *stats.End:
		l.requests.Add(-1)
	}
}

// TagConn implements stats.Handler.
func (l *inflightLimits) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

// HandleConn implements stats.Handler.
func (l *inflightLimits) HandleConn(context.Context, stats.ConnStats) {}
