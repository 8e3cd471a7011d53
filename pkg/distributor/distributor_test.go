package distributor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"))
}

// recorder is the ingester pipeline of a test ingester: it keeps every batch
// and returns whatever fail says.
type recorder struct {
	mu      sync.Mutex
	batches []forward.Batch
	fail    func(ctx context.Context) error
}

func (r *recorder) Append(ctx context.Context, _ wal.RecordType, payload []byte) (wal.Position, error) {
	if r.fail != nil {
		if err := r.fail(ctx); err != nil {
			return wal.Position{}, err
		}
	}
	b, err := forward.DecodeRecord(payload)
	if err != nil {
		return wal.Position{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	return wal.Position{}, nil
}

// AppendExpected is Append: recorder does not group appends.
func (r *recorder) AppendExpected(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error) {
	return r.Append(ctx, typ, payload)
}

// Expect is a no-op: recorder does not group appends.
func (*recorder) Expect(int) {}

// seriesNames returns tenant/metric of every series received.
func (r *recorder) seriesNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.batches {
		for i := range b.Request.Timeseries {
			out = append(out, b.Tenant+"/"+remotewrite.MetricName(&b.Request, &b.Request.Timeseries[i]))
		}
	}
	return out
}

type staticPlacer struct{ p *ring.Placement }

func (s staticPlacer) Placement() *ring.Placement { return s.p }

type testCluster struct {
	dist      *Distributor
	cfg       Config
	deps      Deps // what dist was built with
	members   []ring.Member
	recorders map[string]*recorder // by member name
}

// newTestCluster starts n real gRPC ingesters on loopback and a distributor
// pushing to them over a static placement.
func newTestCluster(t *testing.T, n int, timeout time.Duration) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n, timeout, nil)
}

// newTestClusterWith is newTestCluster with the distributor's configuration
// changed by mod (nil: none).
func newTestClusterWith(t *testing.T, n int, timeout time.Duration, mod func(*Config)) *testCluster {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tc := &testCluster{recorders: map[string]*recorder{}}
	for i := range n {
		rec := &recorder{}
		svc := ingester.NewService(ingester.ServiceDeps{Log: rec, Logger: logger, Registerer: prometheus.NewRegistry()})
		cfg := ingester.Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 64 << 20}
		srv, err := ingester.NewServer(cfg, svc, logger, nil)
		require.NoError(t, err)
		srv.SetServing(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
		m := ring.Member{Name: fmt.Sprintf("ingester-%d", i), Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: srv.Addr()}
		tc.members = append(tc.members, m)
		tc.recorders[m.Name] = rec
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}, tc.members)
	require.NoError(t, err)
	cfg := Config{
		RemoteWrite:    remotewrite.DefaultConfig(),
		PushTimeout:    timeout,
		RetryAfter:     3 * time.Second,
		MaxSendMsgSize: 64 << 20,
	}
	if mod != nil {
		mod(&cfg)
	}
	clients := NewClients(cfg)
	tc.cfg = cfg
	tc.deps = Deps{Ring: staticPlacer{p}, Pusher: clients, Logger: logger, Registerer: prometheus.NewRegistry()}
	tc.dist = New(cfg, tc.deps)
	t.Cleanup(clients.Close)
	return tc
}

// with rebuilds tc's distributor with its dependencies changed by mod, on
// the same connections (a Distributor takes them all at construction).
func (tc *testCluster) with(mod func(*Deps)) {
	mod(&tc.deps)
	tc.deps.Registerer = prometheus.NewRegistry()
	tc.dist = New(tc.cfg, tc.deps)
}

// noPusher is the Pusher of tests that never push: it fails every call.
type noPusher struct{}

func (noPusher) Send(context.Context, string, *ingesterv1.PushRequest) PendingPush {
	return answered{err: errors.New("this test pushes nothing")}
}

// answered is a PendingPush whose answer is known when it is sent: what
// the tests' PushSenders return.
type answered struct {
	resp *ingesterv1.PushResponse
	err  error
}

func (a answered) Wait(context.Context) (*ingesterv1.PushResponse, error) { return a.resp, a.err }

func v1Body(t *testing.T, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func post(t *testing.T, h http.Handler, contentType string, body []byte, tenant string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Content-Encoding", "snappy")
	if tenant != "" {
		r.Header.Set("X-Scope-OrgID", tenant)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// manyMetrics is a RW 1.0 request with n metrics of 3 series each, and
// family metadata for every metric.
func manyMetrics(n int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := range n {
		name := fmt.Sprintf("metric_%03d_total", i)
		for s := range 3 {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "pod", Value: fmt.Sprint(s)}},
				Samples: []prompb.Sample{{Value: float64(s), Timestamp: 1000}},
			})
		}
		req.Metadata = append(req.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: name, Help: "h"})
	}
	return req
}

func TestEverySeriesReachesItsOwnerOnly(t *testing.T) {
	tc := newTestCluster(t, 3, 5*time.Second)
	req := manyMetrics(60)
	w := post(t, tc.dist, "application/x-protobuf", v1Body(t, req), "team-a")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	p := tc.dist.ring.Placement()
	var key []byte
	total := 0
	for name, rec := range tc.recorders {
		got := rec.seriesNames()
		total += len(got)
		for _, s := range got {
			metric := s[len("team-a/"):]
			key = ring.Key(key[:0], "team-a", metric)
			owner, ok := p.Owner(key)
			require.True(t, ok)
			require.Equal(t, owner.Name, name, "series of %s landed on the wrong ingester", metric)
		}
		// Family metadata goes to the family's owner, with its series.
		rec.mu.Lock()
		for _, b := range rec.batches {
			require.Equal(t, "team-a", b.Tenant)
			for _, md := range b.Metadata {
				key = ring.Key(key[:0], "team-a", md.MetricFamilyName)
				owner, _ := p.Owner(key)
				require.Equal(t, owner.Name, name)
			}
		}
		rec.mu.Unlock()
		require.NotEmpty(t, got, "ingester %s got nothing; placement should spread 60 metrics", name)
	}
	require.Equal(t, len(req.Timeseries), total)
}

func TestDefaultTenant(t *testing.T) {
	tc := newTestCluster(t, 1, 5*time.Second)
	w := post(t, tc.dist, "", v1Body(t, manyMetrics(1)), "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, "anonymous/metric_000_total", tc.recorders["ingester-0"].seriesNames()[0])
}

func TestWrittenHeadersV2(t *testing.T) {
	tc := newTestCluster(t, 3, 5*time.Second)
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for i := range 30 {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", fmt.Sprintf("m%d", i)), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
			Exemplars:  []writev2.Exemplar{{Value: 1, Timestamp: 1}},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	w := post(t, tc.dist, "application/x-protobuf;proto=io.prometheus.write.v2.Request", snappy.Encode(nil, b), "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, "60", w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, "0", w.Header().Get("X-Prometheus-Remote-Write-Histograms-Written"))
	require.Equal(t, "30", w.Header().Get("X-Prometheus-Remote-Write-Exemplars-Written"))
}

func TestIngesterFailuresMapToStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		fail           func(ctx context.Context) error
		wantCode       int
		wantRetryAfter string
	}{
		"backpressure answers 429 with Retry-After": {
			fail:     func(context.Context) error { return fmt.Errorf("wal full: %w", wal.ErrFull) },
			wantCode: http.StatusTooManyRequests, wantRetryAfter: "3",
		},
		"failure answers 503 so the sender retries": {
			fail:     func(context.Context) error { return errors.New("disk on fire") },
			wantCode: http.StatusServiceUnavailable,
		},
		"timeout answers 503": {
			fail:     func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantCode: http.StatusServiceUnavailable,
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t, 3, 300*time.Millisecond)
			c.recorders["ingester-1"].fail = tc.fail
			w := post(t, c.dist, "application/x-protobuf", v1Body(t, manyMetrics(60)), "")
			require.Equal(t, tc.wantCode, w.Code, w.Body.String())
			require.Equal(t, tc.wantRetryAfter, w.Header().Get("Retry-After"))
			require.Contains(t, w.Body.String(), "ingester-1")
		})
	}
}

// TestPushesOfARequestProceedTogether: a request's pushes to its ingesters
// are under way at the same time, not one after the other. Each ingester
// holds its push until all three hold theirs; pushed in turn, the first
// would wait for the others until the push timeout.
func TestPushesOfARequestProceedTogether(t *testing.T) {
	tc := newTestCluster(t, 3, 5*time.Second)
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	for _, rec := range tc.recorders {
		rec.fail = func(ctx context.Context) error {
			mu.Lock()
			if arrived++; arrived == len(tc.recorders) {
				close(all)
			}
			mu.Unlock()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	w := post(t, tc.dist, "application/x-protobuf", v1Body(t, manyMetrics(60)), "")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	for name, rec := range tc.recorders {
		require.NotEmpty(t, rec.seriesNames(), "ingester %s", name)
	}
}

func TestNoIngestersAnswers503(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 7, ReplicationFactor: 2, Load: 1.25}, nil)
	require.NoError(t, err)
	d := New(Config{RemoteWrite: remotewrite.DefaultConfig(), PushTimeout: time.Second, RetryAfter: time.Second}, Deps{Ring: staticPlacer{p}, Pusher: noPusher{}, Logger: logger})
	require.Error(t, d.Ready())
	w := post(t, d, "application/x-protobuf", v1Body(t, manyMetrics(1)), "")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "no ACTIVE ingester")
}

func TestInvalidSeriesRejectedValidWritten(t *testing.T) {
	tc := newTestCluster(t, 2, 5*time.Second)
	req := manyMetrics(2)
	req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "broken"}, {Name: "a", Value: "bad\xff"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
	})
	w := post(t, tc.dist, "application/x-protobuf", v1Body(t, req), "")
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `__name__="broken"`)
	require.Contains(t, w.Body.String(), "not valid UTF-8")
	require.Contains(t, w.Body.String(), "the other 6 series in the request were written")
	total := 0
	for _, r := range tc.recorders {
		total += len(r.seriesNames())
	}
	require.Equal(t, 6, total)
}

// TestUnsortedSeriesSortedAndCounted sends series the way vmagent does,
// target labels appended after the scraped ones: they are all written with
// sorted labels and counted by sender.
func TestUnsortedSeriesSortedAndCounted(t *testing.T) {
	tc := newTestCluster(t, 2, 5*time.Second)
	req := manyMetrics(3)
	for i := range req.Timeseries {
		ls := &req.Timeseries[i].Labels
		*ls = append(*ls, prompb.Label{Name: "instance", Value: "127.0.0.1:9100"}, prompb.Label{Name: "job", Value: "node"})
	}
	w := postAs(tc.dist, remotewrite.ProtocolV1, v1Body(t, req), "vmagent")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	got := tc.takeSeries()
	require.Len(t, got, 9)
	for _, ls := range got {
		require.Regexp(t, `^\{__name__=metric_00\d_total, instance=127.0.0.1:9100, job=node, pod=\d\}$`, ls)
	}
	require.Equal(t, 9.0, testutil.ToFloat64(tc.dist.m.sortedSeries.WithLabelValues(remotewrite.ProtoMessageV1, "vmagent")))
}

// renderRefs renders a series' labels in the order of its refs.
func renderRefs(req *writev2.Request, ts *writev2.TimeSeries) string {
	var parts []string
	for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
		parts = append(parts, req.Symbols[ts.LabelsRefs[i]]+"="+req.Symbols[ts.LabelsRefs[i+1]])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestSenderFamily(t *testing.T) {
	for ua, want := range map[string]string{
		"Prometheus/3.16.0":                       "prometheus",
		"vmagent":                                 "vmagent",
		"Alloy/v1.8.0 (linux; binary)":            "alloy",
		"GrafanaAgent/v0.40.0":                    "grafana-agent",
		"OpenTelemetry Collector Contrib/0.120.0": "otel-collector",
		"promgov-loadgen":                         "promgov",
		"curl/8.0":                                "other",
		"":                                        "other",
	} {
		require.Equal(t, want, senderFamily(ua), ua)
	}
}
