package forward

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func newTestClient(t testing.TB, url string, protocol int, reg prometheus.Registerer) *Client {
	t.Helper()
	cfg := DefaultBackendConfig()
	cfg.URL, cfg.Protocol, cfg.Timeout = url, protocol, 5*time.Second
	c, err := NewClient(cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestClientRoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		protocol     int
		mode         receiverMode
		wantProtocol int
		wantFallback string
	}{
		{name: "v2", protocol: 2, mode: modeV2, wantProtocol: 2},
		{name: "v1", protocol: 1, mode: modeV2, wantProtocol: 1},
		{name: "v2 to 1.0-only receiver answering 415 falls back", protocol: 2, mode: modeV1Only, wantProtocol: 1, wantFallback: "415"},
		{name: "v2 to receiver without written headers falls back", protocol: 2, mode: modeNoWrittenHdr, wantProtocol: 1, wantFallback: "no_written_headers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recv := newReceiver(t, tc.mode)
			reg := prometheus.NewRegistry()
			c := newTestClient(t, recv.url(), tc.protocol, reg)
			b1 := genBatch("team-a", 0, 8, 1000)
			b2 := genBatch("team-a", 0, 8, 2000)
			for _, b := range []Batch{b1, b2} {
				require.NoError(t, c.Send(context.Background(), b.Tenant, &b.Request, b.Metadata))
			}
			reqs, got := recv.snapshot()
			require.Equal(t, expected(b1, b2), got)
			require.Equal(t, tc.wantProtocol, c.Protocol())
			for _, r := range reqs {
				requireHeaders(t, r)
				require.Equal(t, "team-a", r.tenant)
			}
			// The second batch always goes out in the final protocol.
			last := reqs[len(reqs)-1]
			require.Equal(t, tc.wantProtocol, last.proto)
			require.Equal(t, float64(tc.wantProtocol), testutil.ToFloat64(c.m.protocol))
			if tc.wantFallback != "" {
				require.Equal(t, 1.0, testutil.ToFloat64(c.m.fallbacks.WithLabelValues(tc.wantFallback)))
			}
		})
	}
}

func TestClientDoesNotModifyRequest(t *testing.T) {
	recv := newReceiver(t, modeV2)
	c := newTestClient(t, recv.url(), 2, nil)
	b := genBatch("t", 0, 8, 1000)
	before := genBatch("t", 0, 8, 1000)
	require.NoError(t, c.Send(context.Background(), b.Tenant, &b.Request, b.Metadata))
	require.Equal(t, before, b)
}

func TestClientMetadataOnly(t *testing.T) {
	for _, protocol := range []int{1, 2} {
		t.Run(map[int]string{1: "v1", 2: "v2"}[protocol], func(t *testing.T) {
			recv := newReceiver(t, modeV2)
			c := newTestClient(t, recv.url(), protocol, nil)
			require.NoError(t, c.Send(context.Background(), "t", &writev2.Request{}, familyMeta()))
			reqs, got := recv.snapshot()
			require.Len(t, reqs, 1)
			require.Equal(t, 1, reqs[0].proto, "2.0 has no family metadata, so it travels as 1.0")
			require.Equal(t, expected(Batch{Metadata: familyMeta()}).Meta, got.Meta)
			require.Equal(t, protocol, c.Protocol())
		})
	}
}

func TestClientPartialWrite(t *testing.T) {
	recv := newReceiver(t, modeV2, fault{samplesHdr: "3"})
	reg := prometheus.NewRegistry()
	c := newTestClient(t, recv.url(), 2, reg)
	b := floatBatch("t", 0, 10, 1000)
	err := c.Send(context.Background(), b.Tenant, &b.Request, nil)
	var pe *PartialWriteError
	require.ErrorAs(t, err, &pe)
	require.False(t, IsRecoverable(err), "partial writes must not be retried")
	require.Equal(t, Counts{Samples: 10}, pe.Sent)
	require.Equal(t, Counts{Samples: 3}, pe.Written)
	require.Equal(t, 7, pe.Dropped())
	require.Equal(t, "partial_write", dropReason(err))
	require.Equal(t, 7.0, testutil.ToFloat64(c.m.partial.WithLabelValues("samples")))
	require.Equal(t, 2, c.Protocol())
}

func TestClientErrorClassification(t *testing.T) {
	httpDate := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name            string
		fault           fault
		wantRecoverable bool
		wantStatus      int
		wantBodyLen     int
		retryAfterMin   time.Duration
		retryAfterMax   time.Duration
	}{
		{name: "500", fault: fault{status: 500, body: "boom"}, wantRecoverable: true, wantStatus: 500},
		{name: "503 retry-after seconds", fault: fault{status: 503, header: map[string]string{"Retry-After": "7"}}, wantRecoverable: true, wantStatus: 503, retryAfterMin: 7 * time.Second, retryAfterMax: 7 * time.Second},
		{name: "429 retry-after date", fault: fault{status: 429, header: map[string]string{"Retry-After": httpDate}}, wantRecoverable: true, wantStatus: 429, retryAfterMin: 58 * time.Minute, retryAfterMax: time.Hour},
		{name: "400 body truncated", fault: fault{status: 400, body: long}, wantStatus: 400, wantBodyLen: maxErrorBody},
		{name: "404", fault: fault{status: 404, body: "no"}, wantStatus: 404},
		{name: "connection dropped", fault: fault{hangUp: true}, wantRecoverable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recv := newReceiver(t, modeV2, tc.fault)
			c := newTestClient(t, recv.url(), 2, nil)
			b := floatBatch("t", 0, 3, 1000)
			err := c.Send(context.Background(), b.Tenant, &b.Request, nil)
			require.Error(t, err)
			require.Equal(t, tc.wantRecoverable, IsRecoverable(err), err)
			var he *HTTPError
			if tc.wantStatus != 0 {
				require.ErrorAs(t, err, &he)
				require.Equal(t, tc.wantStatus, he.Status)
				if tc.wantBodyLen != 0 {
					require.Len(t, he.Body, tc.wantBodyLen)
				}
			} else {
				require.False(t, errors.As(err, &he))
			}
			ra := retryAfter(err)
			require.GreaterOrEqual(t, ra, tc.retryAfterMin)
			require.LessOrEqual(t, ra, tc.retryAfterMax)
			reqs, _ := recv.snapshot()
			require.Empty(t, reqs)
		})
	}
}

func TestClientNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		recv := newReceiver(t, modeV2)
		url := recv.url()
		recv.srv.Close()
		c := newTestClient(t, url, 2, nil)
		b := floatBatch("t", 0, 1, 1)
		err := c.Send(context.Background(), b.Tenant, &b.Request, nil)
		require.True(t, IsRecoverable(err), err)
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		recv := newReceiver(t, modeV2)
		recv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		cfg := DefaultBackendConfig()
		cfg.URL, cfg.Timeout = recv.url(), 20*time.Millisecond
		c, err := NewClient(cfg, nil, nil)
		require.NoError(t, err)
		defer c.Close(context.Background())
		b := floatBatch("t", 0, 1, 1)
		err = c.Send(context.Background(), b.Tenant, &b.Request, nil)
		require.True(t, IsRecoverable(err), err)
	})
	t.Run("caller cancelled is not recoverable", func(t *testing.T) {
		recv := newReceiver(t, modeV2)
		c := newTestClient(t, recv.url(), 2, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b := floatBatch("t", 0, 1, 1)
		err := c.Send(ctx, b.Tenant, &b.Request, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, IsRecoverable(err))
	})
}

func TestClientInvalidBatch(t *testing.T) {
	recv := newReceiver(t, modeV2)
	for _, protocol := range []int{1, 2} {
		c := newTestClient(t, recv.url(), protocol, nil)
		req := &writev2.Request{Symbols: []string{"", "__name__"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 9}}}}
		err := c.Send(context.Background(), "t", req, []prompb.MetricMetadata{{MetricFamilyName: "x"}})
		require.ErrorIs(t, err, ErrInvalidBatch)
		require.False(t, IsRecoverable(err))
	}
}

func TestNewClientRejectsInvalidConfig(t *testing.T) {
	_, err := NewClient(BackendConfig{}, nil, nil)
	require.ErrorContains(t, err, "backend.url")
}

func TestClientRejectedLeftoverMetadataDoesNotBlockSeries(t *testing.T) {
	// The first request is the metadata-only 1.0 request for orphan_gauge.
	recv := newReceiver(t, modeV2, fault{status: 400, body: "metadata not accepted"})
	reg := prometheus.NewRegistry()
	c := newTestClient(t, recv.url(), 2, reg)
	b := genBatch("t", 0, 8, 1000)
	require.NoError(t, c.Send(context.Background(), b.Tenant, &b.Request, b.Metadata))
	_, got := recv.snapshot()
	want := expected(b)
	delete(want.Meta, "orphan_gauge")
	require.Equal(t, want, got)
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.metadataDropped.WithLabelValues("http_400")))
}

func TestClientWrittenHeadersOnEveryAnswer(t *testing.T) {
	written := func(s, h, e string) map[string]string {
		m := map[string]string{}
		for k, v := range map[string]string{headerSamplesWritten: s, headerHistogramWritten: h, headerExemplarsWritten: e} {
			if v != "" {
				m[k] = v
			}
		}
		return m
	}
	// genBatch("t", 0, 8, …) carries 2 samples, 6 histograms, 2 exemplars.
	sent := Counts{Samples: 2, Histograms: 6, Exemplars: 2}
	tests := map[string]struct {
		protocol    int
		fault       fault
		wantErr     bool    // an error at all
		wantWritten *Counts // a *PartialWriteError with these counts
		wantReason  string  // dropReason of the error
		wantPartial map[string]float64
	}{
		"2.0 400 with partial headers": {
			protocol: 2, fault: fault{status: 400, body: "out of order", header: written("1", "6", "0")},
			wantErr: true, wantWritten: &Counts{Samples: 1, Histograms: 6}, wantReason: "http_400",
			wantPartial: map[string]float64{"samples": 1, "histograms": 0, "exemplars": 2},
		},
		"2.0 400 missing headers mean none of that kind written": {
			protocol: 2, fault: fault{status: 400, body: "bad", header: written("2", "", "")},
			wantErr: true, wantWritten: &Counts{Samples: 2}, wantReason: "http_400",
			wantPartial: map[string]float64{"samples": 0, "histograms": 6, "exemplars": 2},
		},
		"2.0 400 nothing written": {
			protocol: 2, fault: fault{status: 400, body: "bad", header: written("0", "0", "0")},
			wantErr: true, wantReason: "http_400",
		},
		"2.0 400 without headers": {
			protocol: 2, fault: fault{status: 400, body: "bad"},
			wantErr: true, wantReason: "http_400",
		},
		"1.0 400 with headers": {
			protocol: 1, fault: fault{status: 400, body: "bad", header: written("2", "3", "")},
			wantErr: true, wantWritten: &Counts{Samples: 2, Histograms: 3}, wantReason: "http_400",
			wantPartial: map[string]float64{"samples": 0, "histograms": 3, "exemplars": 2},
		},
		"1.0 400 without headers": {
			protocol: 1, fault: fault{status: 400, body: "bad"},
			wantErr: true, wantReason: "http_400",
		},
		"header above what was sent is clamped": {
			protocol: 2, fault: fault{status: 400, body: "bad", header: written("99", "-3", "2")},
			wantErr: true, wantWritten: &Counts{Samples: 2, Exemplars: 2}, wantReason: "http_400",
			wantPartial: map[string]float64{"samples": 0, "histograms": 6, "exemplars": 0},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recv := newReceiver(t, modeV2, tc.fault)
			c := newTestClient(t, recv.url(), tc.protocol, prometheus.NewRegistry())
			b := genBatch("t", 0, 8, 1000)
			require.Equal(t, sent, countsOf(&b.Request))
			err := c.Send(context.Background(), b.Tenant, &b.Request, nil)
			require.Equal(t, tc.wantErr, err != nil, "%v", err)
			require.False(t, IsRecoverable(err))
			require.Equal(t, tc.wantReason, map[bool]string{true: dropReason(err), false: ""}[err != nil])
			var pe *PartialWriteError
			if tc.wantWritten == nil {
				require.False(t, errors.As(err, &pe), "%v", err)
			} else {
				require.ErrorAs(t, err, &pe)
				require.Equal(t, *tc.wantWritten, pe.Written)
				require.Equal(t, sent, pe.Sent)
				require.Equal(t, sent.Total()-tc.wantWritten.Total(), pe.Dropped())
			}
			for kind, n := range tc.wantPartial {
				require.Equal(t, n, testutil.ToFloat64(c.m.partial.WithLabelValues(kind)), kind)
			}
			require.Equal(t, tc.protocol, c.Protocol(), "a 400 is no reason to change protocol")
		})
	}
}

func TestClientFallbackResendsTheBatch(t *testing.T) {
	for _, mode := range []receiverMode{modeV1Only, modeNoWrittenHdr} {
		t.Run(map[receiverMode]string{modeV1Only: "415", modeNoWrittenHdr: "no written headers"}[mode], func(t *testing.T) {
			recv := newReceiver(t, mode)
			c := newTestClient(t, recv.url(), 2, prometheus.NewRegistry())
			b := genBatch("t", 0, 8, 1000)
			require.NoError(t, c.Send(context.Background(), b.Tenant, &b.Request, b.Metadata))
			reqs, got := recv.snapshot()
			require.Equal(t, expected(b), got, "the batch that revealed the 1.0 receiver arrived")
			// The 2.0 attempt (stored as nothing, or refused), then the
			// whole batch as 1.0 within the same Send.
			var v1 int
			for _, r := range reqs {
				if r.proto == 1 {
					v1 += r.samples
				}
			}
			require.Equal(t, countsOf(&b.Request).Total(), v1)
			require.Equal(t, 1, c.Protocol())
		})
	}
}
