package ingester

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/forward"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestInflightLimits: while pushes are held in the WAL append, a push past
// an instance limit is answered RESOURCE_EXHAUSTED naming the flag; once
// they return, pushes are accepted again and the gauges are back at zero.
func TestInflightLimits(t *testing.T) {
	for transport, push := range transports {
		t.Run(transport, func(t *testing.T) { testInflightLimits(t, push) })
	}
}

func testInflightLimits(t *testing.T, push func(context.Context, ingesterv1.IngesterServiceClient, *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error)) {
	small := payload(t)
	large := manySeries(t, 200)
	for name, tc := range map[string]struct {
		cfg     func(*Config)
		held    int // pushes held in the append
		heldReq []byte
		next    []byte
		flag    string
	}{
		"requests": {
			cfg:  func(c *Config) { c.MaxInflightPushRequests = 2 },
			held: 2, heldReq: small, next: small, flag: "-ingester.max-inflight-push-requests",
		},
		"bytes": {
			cfg:  func(c *Config) { c.MaxInflightPushBytes = int64(len(large)) + int64(len(small))/2 },
			held: 1, heldReq: large, next: small, flag: "-ingester.max-inflight-push-bytes",
		},
	} {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, tc.held)
			var once sync.Once
			app := appendFunc(func(context.Context, forward.Batch) error {
				entered <- struct{}{}
				<-release
				return nil
			})
			cfg := Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20}
			tc.cfg(&cfg)
			reg := prometheus.NewRegistry()
			_, client, _, _ := startServerWith(t, app, cfg, reg)
			defer once.Do(func() { close(release) })

			var wg sync.WaitGroup
			for range tc.held {
				wg.Go(func() {
					_, err := push(context.Background(), client, &ingesterv1.PushRequest{Tenant: "t", Request: tc.heldReq})
					if err != nil {
						t.Errorf("held push: %v", err)
					}
				})
			}
			for range tc.held {
				<-entered
			}
			// Without the limit this push would be held like the others:
			// bounded, so that the test fails (DeadlineExceeded) instead
			// of hanging.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := push(ctx, client, &ingesterv1.PushRequest{Tenant: "t", Request: tc.next})
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.flag)
			require.Equal(t, 1.0, metricValue(t, reg, "promgov_ingester_instance_limit_rejections_total"))

			once.Do(func() { close(release) })
			wg.Wait()
			_, err = push(context.Background(), client, &ingesterv1.PushRequest{Tenant: "t", Request: tc.next})
			require.NoError(t, err, "pushes are accepted again once the held ones returned")
			// A push counts until its answer is sent (a stopping server
			// waits for it), so the sender may read the answer a moment
			// before the gauges fall.
			require.Eventually(t, func() bool {
				return metricValue(t, reg, "promgov_ingester_inflight_push_bytes") == 0 &&
					metricValue(t, reg, "promgov_ingester_inflight_push_requests") == 0
			}, 5*time.Second, time.Millisecond, "the gauges are back at zero")
		})
	}
}

// metricValue is the sum of the series of the metric name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// manySeries is a marshalled RW 2.0 request of n series.
func manySeries(t *testing.T, n int) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for i := range n {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("host-%d", i)), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}
