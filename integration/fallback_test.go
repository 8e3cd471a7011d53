package integration

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestForwardFallbackLosesNothing puts a remote write 1.0 backend behind
// an ingester that starts with remote write 2.0, under load and across an
// ingester restart (which starts with 2.0 again). Each backend reveals its
// protocol the way it does in the field, and the batch that reveals it
// must be sent again as 1.0: every acknowledged sample arrives.
//
//   - VictoriaMetrics and the Debian Prometheus 2.42 decode a 2.0 body as
//     an empty 1.0 request and answer 204 without Written headers;
//   - Prometheus 3.16 accepting only prometheus.WriteRequest answers 415.
func TestForwardFallbackLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string // promgov_forward_protocol_fallbacks_total{reason}
		start  func(t *testing.T) (writeURL string, stored func(T) int)
	}{
		{name: "victoriametrics", reason: "no_written_headers", start: func(t *testing.T) (string, func(T) int) {
			vm := startVictoriaMetrics(t)
			return vm.writeURL(), func(t T) int { return vm.distinctSamples(t, `{__name__=~"loadgen_.+"}`) }
		}},
		{name: "prometheus-2.42", reason: "no_written_headers", start: func(t *testing.T) (string, func(T) int) {
			bin := requirePeer(t, debianPrometheus, "")
			be := startPrometheusAt(t, "prometheus-2.42", bin, t.TempDir(), freeAddr(t))
			return be.writeURL(), func(t T) int { return samplesIn(be.rawSamples(t, `{__name__=~"loadgen_.+"}`)) }
		}},
		{name: "prometheus-3.16-rw1-only", reason: "415", start: func(t *testing.T) (string, func(T) int) {
			requireIntegration(t)
			be := startPrometheusAt(t, "prometheus-rw1", prometheus, t.TempDir(), freeAddr(t),
				"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest")
			return be.writeURL(), func(t T) int { return samplesIn(be.rawSamples(t, `{__name__=~"loadgen_.+"}`)) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeURL, stored := tc.start(t)
			wc := startWALCluster(t, nil, writeURL, 1)
			ing := wc.ingesters[0]
			metric := func(name string) float64 { return metricSum(ing.url("/metrics"), name) }
			fallbacks := func() float64 {
				return metric(`promgov_forward_protocol_fallbacks_total{backend="default",reason="` + tc.reason + `"`)
			}

			var out bytes.Buffer
			const rate, requests = 2000, 400 // 20 s of load
			lg := wc.startLoadgen(&out, rate, requests)
			eventually(t, func(ct *assert.CollectT) bool { return fallbacks() == 1 && stored(ct) > 0 }, 60*time.Second, 200*time.Millisecond,
				"no fallback to 1.0 (fallbacks %v)", lazy(func() any { return fallbacks() }))
			require.Equal(t, 1.0, metric("promgov_forward_protocol_version"))

			// A restart starts with 2.0 again: the fallback happens again,
			// and again re-sends the batch that triggered it.
			sentBefore := metric("promgov_forward_sent_samples_total")
			ing.proc.Stop(t)
			wc.startWALIngester(ing)
			wc.waitActive(1)
			require.Eventually(t, func() bool { return fallbacks() == 1 }, 60*time.Second, 200*time.Millisecond,
				"no fallback after the restart (fallbacks %v)", lazy(func() any { return fallbacks() }))

			rep := waitLoadgen(t, lg, &out, 120*time.Second)
			found := waitAllStored(t, rep, stored)
			sentAfter := metric("promgov_forward_sent_samples_total")
			require.Equal(t, 1.0, metric("promgov_forward_protocol_version"))
			require.Zero(t, metric("promgov_forward_dropped_samples_total"))
			t.Logf("%s (fallback reason %s, again after the restart): loadgen acknowledged %d samples; the forwarder sent %.0f before the restart and %.0f after it (re-sends after the restart included); the backend holds %d distinct samples",
				tc.name, tc.reason, rep.AcceptedSamples, sentBefore, sentAfter, found)
		})
	}
}
