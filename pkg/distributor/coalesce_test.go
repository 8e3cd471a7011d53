package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// gatedLog is an ingester's log that holds the first append until open is
// closed (a slow fsync, on demand), then records every batch.
type gatedLog struct {
	rec     recorder
	entered chan struct{} // closed when the first append arrived
	open    chan struct{}
	once    sync.Once
}

func newGatedLog() *gatedLog {
	return &gatedLog{entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gatedLog) Append(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.rec.Append(ctx, typ, payload)
}

func (g *gatedLog) AppendAll(ctx context.Context, typ wal.RecordType, payloads [][]byte) []error {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.rec.AppendAll(ctx, typ, payloads)
}

// servePushes serves svc's data service (or only Push, for an ingester
// older than PushParts) over real gRPC with the ingesters' codec and
// returns its address.
func servePushes(t *testing.T, svc ingesterv1.IngesterServiceServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	codec := ingesterv1.NewServerCodec()
	srv := grpc.NewServer(grpc.ForceServerCodecV2(codec), grpc.ChainUnaryInterceptor(codec.ReleaseInterceptor()))
	ingesterv1.RegisterIngesterServiceServer(srv, svc)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String()
}

// pushOnly is an ingester that predates PushParts: it answers UNIMPLEMENTED.
type pushOnly struct {
	ingesterv1.UnimplementedIngesterServiceServer
	svc *ingester.Service
}

func (p pushOnly) Push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	return p.svc.Push(ctx, req)
}

// oneSeries is a batch of one series of metric name with one sample.
func oneSeries(name string) []byte {
	st := writev2.NewSymbolTable()
	req := writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", name), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
	}}}
	req.Symbols = st.Symbols()
	return record.FromV2(nil, &req)
}

// TestCoalescedPushes: with one call in flight to an ingester (held in
// its log), the pushes made meanwhile queue and leave together in the next
// call. Every caller gets its own part's answer (an invalid part fails
// alone), a caller that gives up while queued is not sent, and every part
// sent is logged, in the order queued. An ingester older than PushParts
// gets the same parts one push each.
func TestCoalescedPushes(t *testing.T) {
	for name, old := range map[string]bool{"PushParts": false, "an older ingester": true} {
		t.Run(name, func(t *testing.T) {
			log := newGatedLog()
			svc := ingester.NewService(ingester.ServiceDeps{Log: log, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
			svc.Accept(true)
			var srv ingesterv1.IngesterServiceServer = svc
			if old {
				srv = pushOnly{svc: svc}
			}
			addr := servePushes(t, srv)

			cfg := DefaultConfig()
			cfg.Coalesce.MaxInflight = 1
			reg := prometheus.NewRegistry()
			clients := NewClients(cfg, reg)
			t.Cleanup(clients.Close)

			type answer struct {
				resp *ingesterv1.PushResponse
				err  error
			}
			push := func(ctx context.Context, series []byte) <-chan answer {
				ch := make(chan answer, 1)
				go func() {
					resp, err := clients.Push(ctx, addr, &ingesterv1.PushRequest{Tenant: "t", Series: series})
					ch <- answer{resp, err}
				}()
				return ch
			}
			queued := func(n int) {
				t.Helper()
				c := clients.coalesce.get(addr, mustConn(t, clients, addr), 1)
				require.Eventually(t, func() bool {
					c.mu.Lock()
					defer c.mu.Unlock()
					return len(c.queue) == n
				}, 10*time.Second, time.Millisecond)
			}

			first := push(context.Background(), oneSeries("m0"))
			<-log.entered // the first call is in the ingester's log
			var rest []<-chan answer
			for i := 1; i <= 3; i++ {
				rest = append(rest, push(context.Background(), oneSeries(fmt.Sprintf("m%d", i))))
				queued(i)
			}
			invalid := push(context.Background(), []byte{0xff, 0x01})
			queued(4)
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := push(ctx, oneSeries("gave_up"))
			queued(5)
			cancel()
			require.Equal(t, codes.Canceled, status.Code((<-gaveUp).err), "a caller that gives up while queued")
			queued(4)
			last := push(context.Background(), oneSeries("m4"))
			rest = append(rest, last)
			queued(5)

			close(log.open)
			a := <-first
			require.NoError(t, a.err)
			require.Equal(t, int64(1), a.resp.GetSamplesWritten())
			for i, ch := range rest {
				a := <-ch
				require.NoError(t, a.err, "push %d", i+1)
				require.Equal(t, int64(1), a.resp.GetSamplesWritten(), "push %d", i+1)
			}
			bad := <-invalid
			require.Equal(t, codes.InvalidArgument, status.Code(bad.err), "%v", bad.err)
			require.Contains(t, bad.err.Error(), "invalid series batch")

			log.rec.mu.Lock()
			var got []string
			for _, b := range log.rec.batches {
				got = append(got, batchNames(t, b)...)
			}
			log.rec.mu.Unlock()
			want := []string{"m0", "m1", "m2", "m3", "m4"}
			if old {
				// Pushed one by one at once: concurrent requests have no
				// order between them.
				require.ElementsMatch(t, want, got, "every part sent is logged once")
			} else {
				require.Equal(t, want, got, "every part sent is logged once, in the order queued")
			}

			// Two calls: the first push alone, then the five queued.
			require.Equal(t, 2.0, histogramCount(t, reg, "promgov_distributor_ingester_call_parts"))
			require.Equal(t, 6.0, histogramSum(t, reg, "promgov_distributor_ingester_call_parts"))
			require.Equal(t, old, clients.coalesce.get(addr, mustConn(t, clients, addr), 1).noParts.Load())
		})
	}
}

func mustConn(t *testing.T, c *Clients, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := c.pool.Conn(addr)
	require.NoError(t, err)
	return conn
}

// batchNames returns the metric names of a logged batch's series.
func batchNames(t *testing.T, b forward.Batch) []string {
	t.Helper()
	var out []string
	sb := labels.NewScratchBuilder(1)
	for _, ts := range b.Request.Timeseries {
		ls, err := ts.ToLabels(&sb, b.Request.Symbols)
		require.NoError(t, err)
		out = append(out, ls.Get("__name__"))
	}
	return out
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return float64(histogram(t, reg, name).GetSampleCount())
}

func histogramSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return histogram(t, reg, name).GetSampleSum()
}

// histogram returns the one histogram of family name in reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
