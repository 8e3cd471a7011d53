package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	t.Parallel()
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

// TestForwardFallbackWithRelabelAndPoison: the batch that reveals a 1.0
// backend is the first one, it has been through the backend's
// write_relabel_configs, and it carries a series the backend refuses. The
// re-send as 1.0 keeps the relabelling, and the refusal of the re-sent
// batch is isolated as for any other batch: every good series arrives,
// relabelled, on both fallback paths, and only the poison is dropped.
func TestForwardFallbackWithRelabelAndPoison(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	rw1 := startPrometheusAt(t, "prometheus-rw1", prometheus, t.TempDir(), freeAddr(t),
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest")
	vm := startVictoriaMetrics(t)
	relabel := `    write_relabel_configs:
      - source_labels: [env]
        regex: dev
        action: drop
      - target_label: replica
        replacement: b
`
	cfgFile := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("backends:\n  - name: rw1\n    url: %s\n    protocol: 2\n%s  - name: vm\n    url: %s\n    protocol: 2\n%s",
		rw1.writeURL(), relabel, vm.writeURL(), relabel)), 0o600))
	wc := startWALCluster(t, nil, "", 1, "--config.file="+cfgFile, "--forward.batch-send-deadline=1s")
	ing := wc.ingesters[0]

	now := time.Now()
	var series [][]string
	for i := range 500 {
		env := "prod"
		if i%4 == 0 {
			env = "dev"
		}
		series = append(series, []string{"fallback_relabel_good", "i", strconv.Itoa(i), "env", env})
	}
	series = append(series, []string{"fallback_relabel_bad", "env", "prod"})
	// The poison: an hour ahead, which Prometheus refuses ("out of bounds").
	writeSeriesAs(t, wc.writeURL(), "team-a", now, map[int]time.Time{500: now.Add(time.Hour)}, series...)

	at := now.Add(time.Minute)
	metrics := ing.url("/metrics")
	for _, be := range []struct {
		name, reason string
		b            *backend
	}{{"rw1", "415", rw1}, {"vm", "no_written_headers", vm}} {
		eventually(t, func(ct *assert.CollectT) bool {
			return instantCount(ct, be.b, `count(last_over_time(fallback_relabel_good{replica="b",env="prod"}[5m]))`, at) == 375
		}, 60*time.Second, 200*time.Millisecond, "%s: the 375 good series not from dev arrive, relabelled", be.name)
		require.Zero(t, instantCount(t, be.b, `count(last_over_time(fallback_relabel_good{env="dev"}[5m]))`, at), be.name)
		require.Equal(t, 1.0, metricSum(metrics, `promgov_forward_protocol_fallbacks_total{backend="`+be.name+`",reason="`+be.reason+`"`), be.name)
		require.Equal(t, 125.0, metricSum(metrics, `promgov_forward_relabel_dropped_series_total{backend="`+be.name+`"}`), be.name)
	}
	// Prometheus fails the whole 1.0 request for the poison: it is
	// isolated and dropped alone.
	require.Eventually(t, func() bool {
		return metricSum(metrics, `promgov_forward_dropped_samples_total{backend="rw1",reason="http_400"}`) == 1
	}, 30*time.Second, 100*time.Millisecond, "rw1: exactly the poison sample is dropped")
	require.Equal(t, 1.0, metricSum(metrics, `promgov_forward_rejected_series_total{backend="rw1",reason="http_400"}`))
	require.Zero(t, instantCount(t, rw1, `count(last_over_time(fallback_relabel_bad[3h]))`, now.Add(90*time.Minute)), "the poison is not stored")
	require.Equal(t, 375.0, metricSum(metrics, `promgov_forward_sent_samples_total{backend="rw1"}`))
	// VictoriaMetrics takes a sample an hour ahead: what it holds of the
	// poison is what it was sent besides the good series.
	vmPoison := instantCount(t, vm, `count(last_over_time(fallback_relabel_bad[3h]))`, now.Add(90*time.Minute))
	require.Equal(t, 375+vmPoison, metricSum(metrics, `promgov_forward_sent_samples_total{backend="vm"}`))
	require.Zero(t, metricSum(metrics, `promgov_forward_dropped_samples_total{backend="vm"}`))
	t.Logf("rw1 (415): 375 of 375 relabelled good series stored, the poison isolated with %v extra requests and dropped; vm (no Written headers): 375 of 375, the poison stored %v time(s)",
		metricSum(metrics, `promgov_forward_split_requests_total{backend="rw1"}`), vmPoison)
}
