package ingester

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type appendFunc func(ctx context.Context, b forward.Batch) error

// Append decodes the record as the forwarder would and hands it to f.
func (f appendFunc) Append(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error) {
	if typ != wal.RecordBatch {
		return wal.Position{}, fmt.Errorf("unexpected record type %d", typ)
	}
	b, err := forward.DecodeRecord(payload)
	if err != nil {
		return wal.Position{}, err
	}
	return wal.Position{}, f(ctx, b)
}

// AppendExpected is Append: appendFunc does not group appends.
func (f appendFunc) AppendExpected(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error) {
	return f.Append(ctx, typ, payload)
}

// Expect is a no-op: appendFunc does not group appends.
func (appendFunc) Expect(int) {}

// expectBalance wraps a Log and keeps the balance of announcements, as
// wal.WAL does: Expect adds, AppendExpected ends one. A push must leave it
// at zero, whatever its outcome, or the WAL's groups would wait for an
// append that never comes.
type expectBalance struct {
	Log
	announced atomic.Int64
}

func (e *expectBalance) Expect(n int) { e.announced.Add(int64(n)) }

func (e *expectBalance) AppendExpected(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error) {
	e.announced.Add(-1)
	return e.Log.AppendExpected(ctx, typ, payload)
}

// states records the ring states announced, and signals each one.
type states struct {
	mu  sync.Mutex
	got []ring.State
	ch  chan ring.State
}

func (s *states) SetState(st ring.State) error {
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
	s.ch <- st
	return nil
}

func payload(t *testing.T) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "a"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 1, Timestamp: 2}},
		Histograms: nil,
		Exemplars:  []writev2.Exemplar{{Value: 1, Timestamp: 1}},
	}}}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

// badRefs is a decodable request whose label reference is out of range.
func badRefs(t *testing.T) []byte {
	t.Helper()
	req := writev2.Request{Symbols: []string{""}, Timeseries: []writev2.TimeSeries{{
		LabelsRefs: []uint32{0, 7},
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
	}}}
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

// startServer serves svc over real gRPC and returns a client.
func startServer(t *testing.T, app Log) (*Server, ingesterv1.IngesterServiceClient, *grpc.ClientConn, *states) {
	t.Helper()
	return startServerWith(t, app, Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20}, nil)
}

// startServerWith is startServer with cfg, registering the server's
// metrics in reg.
func startServerWith(t *testing.T, app Log, cfg Config, reg prometheus.Registerer) (*Server, ingesterv1.IngesterServiceClient, *grpc.ClientConn, *states) {
	t.Helper()
	r := launch(t, app, cfg, reg)
	t.Cleanup(func() {
		_ = r.conn.Close()
		r.stop()
		require.NoError(t, <-r.done)
	})
	return r.srv, ingesterv1.NewIngesterServiceClient(r.conn), r.conn, r.states
}

// launched is a server running under its lifecycle: stop cancels it and
// done reports the lifecycle's end.
type launched struct {
	srv    *Server
	conn   *grpc.ClientConn
	states *states
	stop   context.CancelFunc
	done   <-chan error
}

// launch starts a server over app and its lifecycle (a 50 ms drain) and
// waits until it is ACTIVE; the caller stops it.
func launch(t *testing.T, app Log, cfg Config, reg prometheus.Registerer) launched {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := NewService(ServiceDeps{Log: app, Logger: logger, Registerer: prometheus.NewRegistry()})
	srv, err := NewServer(cfg, svc, logger, reg)
	require.NoError(t, err)
	st := &states{ch: make(chan ring.State, 4)}
	lc := NewLifecycle(srv, st, 50*time.Millisecond, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	require.Equal(t, ring.StateActive, <-st.ch)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	return launched{srv: srv, conn: conn, states: st, stop: cancel, done: done}
}

// transports are the two ways a distributor pushes: a Push call, and a
// push on a PushStream (a stream of its own here).
var transports = map[string]func(context.Context, ingesterv1.IngesterServiceClient, *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error){
	"call": func(ctx context.Context, c ingesterv1.IngesterServiceClient, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
		return c.Push(ctx, req)
	},
	"stream": streamPush,
}

// streamPush pushes req on a PushStream of its own and returns the answer
// as Push would.
func streamPush(ctx context.Context, c ingesterv1.IngesterServiceClient, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.PushStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(req); err != nil {
		_, err = s.Recv()
		return nil, err
	}
	r, err := s.Recv()
	if err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	if c := codes.Code(r.GetCode()); c != codes.OK {
		return nil, status.Error(c, r.GetMessage())
	}
	return r.GetResponse(), nil
}

func TestPushStatusCodes(t *testing.T) {
	for transport, push := range transports {
		t.Run(transport, func(t *testing.T) { testPushStatusCodes(t, push) })
	}
}

func testPushStatusCodes(t *testing.T, push func(context.Context, ingesterv1.IngesterServiceClient, *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error)) {
	for name, tc := range map[string]struct {
		appendErr error
		body      []byte
		wantCode  codes.Code
	}{
		"accepted":                      {wantCode: codes.OK},
		"backpressure":                  {appendErr: fmt.Errorf("full: %w", wal.ErrFull), wantCode: codes.ResourceExhausted},
		"append failure":                {appendErr: errors.New("boom"), wantCode: codes.Unavailable},
		"undecodable":                   {body: []byte{0xff, 0xff, 0xff}, wantCode: codes.InvalidArgument},
		"symbol reference out of range": {body: badRefs(t), wantCode: codes.InvalidArgument},
		"record too large":              {appendErr: fmt.Errorf("append: %w", wal.ErrRecordTooLarge), wantCode: codes.InvalidArgument},
		"wal closed":                    {appendErr: fmt.Errorf("append: %w", wal.ErrClosed), wantCode: codes.Unavailable},
	} {
		t.Run(name, func(t *testing.T) {
			var got forward.Batch
			log := &expectBalance{Log: appendFunc(func(_ context.Context, b forward.Batch) error {
				got = b
				return tc.appendErr
			})}
			_, client, _, _ := startServer(t, log)
			body := tc.body
			if body == nil {
				body = payload(t)
			}
			resp, err := push(context.Background(), client, &ingesterv1.PushRequest{
				Tenant: "t1", Request: body,
				Metadata: MetadataToProto([]prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "h", Unit: "u"}}),
			})
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			require.Zero(t, log.announced.Load(), "the push withdrew or made the append it announced")
			if tc.wantCode != codes.OK {
				return
			}
			require.Equal(t, int64(2), resp.GetSamplesWritten())
			require.Equal(t, int64(1), resp.GetExemplarsWritten())
			require.Equal(t, "t1", got.Tenant)
			require.Equal(t, []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "h", Unit: "u"}}, got.Metadata)
		})
	}
}

func TestLeaveSequence(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := NewService(ServiceDeps{Log: appendFunc(func(context.Context, forward.Batch) error { return nil }), Logger: logger})
	srv, err := NewServer(Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20}, svc, logger, nil)
	require.NoError(t, err)
	st := &states{ch: make(chan ring.State, 4)}
	lc := NewLifecycle(srv, st, 3*time.Second, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	require.Equal(t, ring.StateActive, <-st.ch)

	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	client := ingesterv1.NewIngesterServiceClient(conn)
	hc, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: ingesterv1.IngesterService_ServiceDesc.ServiceName})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())

	cancel()
	require.Equal(t, ring.StateLeaving, <-st.ch)
	// Still serving during the drain period: distributors move away first.
	_, err = client.Push(context.Background(), &ingesterv1.PushRequest{Request: payload(t)})
	require.NoError(t, err)
	// After the drain it stops taking pushes and returns cleanly.
	require.NoError(t, <-done)
	_, err = client.Push(context.Background(), &ingesterv1.PushRequest{Request: payload(t)})
	require.Equal(t, codes.Unavailable, status.Code(err))
}

func TestPushIntoRealWAL(t *testing.T) {
	cfg := wal.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.SegmentSize, cfg.MaxSizeBytes = 4<<10, 8<<10
	w, err := wal.Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	_, client, _, _ := startServer(t, w)

	// Every acknowledged push is a record that decodes to what was sent;
	// once the WAL is full, pushes are refused with RESOURCE_EXHAUSTED.
	acked := 0
	var pushErr error
	for acked < 10_000 {
		_, pushErr = client.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t1", Request: payload(t)})
		if pushErr != nil {
			break
		}
		acked++
	}
	require.Equal(t, codes.ResourceExhausted, status.Code(pushErr), "%v", pushErr)
	require.Positive(t, acked)

	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	for range acked {
		rec, err := r.Next(context.Background())
		require.NoError(t, err)
		b, err := forward.DecodeRecord(rec.Payload)
		require.NoError(t, err)
		require.Equal(t, "t1", b.Tenant)
		require.Len(t, b.Request.Timeseries, 1)
	}
}

// TestConcurrentPushesKeepTheirBytes: pushes are read into buffers the
// server lends and takes back once it answered. Many concurrent pushes of
// distinct series through real gRPC into a real WAL each land exactly once
// with their own labels and values: no push's bytes are overwritten by
// another's while in use.
func TestConcurrentPushesKeepTheirBytes(t *testing.T) {
	cfg := wal.DefaultConfig()
	cfg.Dir = t.TempDir()
	w, err := wal.Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	_, client, _, _ := startServer(t, w)

	const senders, pushes, series = 8, 40, 50
	batch := func(s, p int) []byte {
		st := writev2.NewSymbolTable()
		var req writev2.Request
		for i := range series {
			name := fmt.Sprintf("m_%d_%d", s, p)
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", name, "i", fmt.Sprint(i)), nil),
				Samples:    []writev2.Sample{{Value: float64(s*1_000_000 + p*1_000 + i), Timestamp: 1}},
			})
		}
		req.Symbols = st.Symbols()
		return record.FromV2(nil, &req)
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for p := range pushes {
				_, err := client.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Series: batch(s, p)})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()

	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	seen := map[string]int{}
	for range senders * pushes {
		rec, err := r.Next(context.Background())
		require.NoError(t, err)
		b, err := forward.DecodeRecord(rec.Payload)
		require.NoError(t, err)
		require.Len(t, b.Request.Timeseries, series)
		for _, ts := range b.Request.Timeseries {
			ls, err := ts.ToLabels(&labels.ScratchBuilder{}, b.Request.Symbols)
			require.NoError(t, err)
			var s, p, i int
			_, err = fmt.Sscanf(ls.Get("__name__"), "m_%d_%d", &s, &p)
			require.NoError(t, err)
			_, err = fmt.Sscan(ls.Get("i"), &i)
			require.NoError(t, err)
			require.Len(t, ts.Samples, 1)
			require.Equal(t, float64(s*1_000_000+p*1_000+i), ts.Samples[0].Value, "series %s", ls)
			seen[ls.String()]++
		}
	}
	require.Len(t, seen, senders*pushes*series, "every series sent arrived")
	for ls, n := range seen {
		require.Equal(t, 1, n, "series %s", ls)
	}
}
