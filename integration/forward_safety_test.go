package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeSeriesAs sends one RW 1.0 request as tenant: a sample of value 1
// at ts for each series (name, then label pairs), at at[i] instead for the
// series listed in at. The distributor must accept all of it.
func writeSeriesAs(t *testing.T, writeURL, tenant string, ts time.Time, at map[int]time.Time, series ...[]string) {
	t.Helper()
	req := &prompb.WriteRequest{}
	for i, s := range series {
		ls := []prompb.Label{{Name: "__name__", Value: s[0]}}
		for j := 1; j+1 < len(s); j += 2 {
			ls = append(ls, prompb.Label{Name: s[j], Value: s[j+1]})
		}
		when := ts
		if t, ok := at[i]; ok {
			when = t
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: when.UnixMilli()}}})
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	code, _, body := postRW(t, writeURL, contentTypeV1, snappy.Encode(nil, b), map[string]string{"X-Scope-OrgID": tenant})
	require.Equal(t, http.StatusNoContent, code, body)
}

// instantCount evaluates query at ts on be, to the second (0 for an
// empty result).
func instantCount(t T, be *backend, query string, ts time.Time) float64 {
	t.Helper()
	return countAt(t, be, query, ts.Truncate(time.Second))
}

// TestForwardPoisonSeries: one series a real Prometheus 3.16 refuses (a
// sample an hour in the future: "out of bounds", 400) rides in the same
// forwarded request as 500 good series of its tenant, next to 500 series
// of another tenant. Every good series arrives and only the poison is
// dropped, counted and logged: over Remote Write 1.0 Prometheus fails the
// whole request, so the forwarder splits it until the poison is alone;
// over 2.0 Prometheus writes the rest and says so in its Written headers,
// which the forwarder trusts.
func TestForwardPoisonSeries(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	for _, proto := range []int{1, 2} {
		t.Run(fmt.Sprintf("rw%d", proto), func(t *testing.T) {
			be := startBackend(t)
			wc := startWALCluster(t, be, be.writeURL(), 1, "--backend.protocol="+strconv.Itoa(proto),
				"--forward.batch-send-deadline=1s")
			ing := wc.ingesters[0]
			now := time.Now()
			good := func(metric string) [][]string {
				var out [][]string
				for i := range 500 {
					out = append(out, []string{metric, "i", strconv.Itoa(i)})
				}
				return out
			}
			teamA := append(good("poison_test_good"), []string{"poison_test_bad", "i", "0"})
			writeSeriesAs(t, wc.writeURL(), "team-a", now, map[int]time.Time{500: now.Add(time.Hour)}, teamA...)
			writeSeriesAs(t, wc.writeURL(), "team-b", now, nil, good("poison_test_other")...)

			eventually(t, func(ct *assert.CollectT) bool {
				return instantCount(ct, be, `count(last_over_time(poison_test_good[5m]))`, now.Add(time.Minute)) == 500 &&
					instantCount(ct, be, `count(last_over_time(poison_test_other[5m]))`, now.Add(time.Minute)) == 500
			}, 60*time.Second, 200*time.Millisecond, "all 1000 good series arrive")
			metrics := ing.url("/metrics")
			require.Eventually(t, func() bool {
				return metricSum(metrics, `promgov_forward_dropped_samples_total{backend="default",reason="http_400"}`) == 1
			}, 30*time.Second, 100*time.Millisecond, "exactly the poison sample is dropped")
			require.Zero(t, instantCount(t, be, `count(last_over_time(poison_test_bad[3h]))`, now.Add(90*time.Minute)), "the poison is not stored")
			require.Equal(t, 1000.0, metricSum(metrics, `promgov_forward_sent_samples_total{backend="default"}`))
			split := metricSum(metrics, `promgov_forward_split_requests_total{backend="default"}`)
			if proto == 1 {
				require.Equal(t, 1.0, metricSum(metrics, `promgov_forward_rejected_series_total{backend="default",reason="http_400"}`))
				require.Positive(t, split)
				require.LessOrEqual(t, split, 2.0*9, "one poison among 501 series: two requests per halving")
				// Logged once for the batch, by metric and reason.
				logged, err := os.ReadFile(ing.proc.log)
				require.NoError(t, err)
				var lines []string
				for _, l := range strings.Split(string(logged), "\n") {
					if strings.Contains(l, "backend refused part of a batch") {
						lines = append(lines, l)
					}
				}
				require.Len(t, lines, 1)
				require.Contains(t, lines[0], `rejected_series="poison_test_bad (http_400) x1"`)
				require.Contains(t, lines[0], "written=500")
				t.Log(lines[0])
			} else {
				require.Zero(t, split, "the Written headers say what was written: no split")
			}
			t.Logf("rw%d: 1000 good series stored, the poison dropped; %v extra requests to isolate it", proto, split)
		})
	}
}

// TestBackendsWriteRelabel forwards to two real Prometheus 3.16 backends:
// "subset" has write_relabel_configs that drop some series and add a
// label, "all" has none. Each gets what its configuration says, and the
// series dropped for one still reach the other.
func TestBackendsWriteRelabel(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	subset, all := startBackend(t), startBackend(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`backends:
  - name: subset
    url: %s
    write_relabel_configs:
      - source_labels: [__name__, env]
        regex: "relabel_test_.*;dev"
        action: drop
      - target_label: replica
        replacement: b
  - name: all
    url: %s
`, subset.writeURL(), all.writeURL())), 0o600))
	wc := startWALCluster(t, nil, "", 1, "--config.file="+cfgFile)
	ing := wc.ingesters[0]
	now := time.Now()
	var series [][]string
	for i := range 20 {
		env := "prod"
		if i%4 == 0 {
			env = "dev"
		}
		series = append(series, []string{"relabel_test_metric", "i", strconv.Itoa(i), "env", env})
	}
	writeSeriesAs(t, wc.writeURL(), "team-a", now, nil, series...)

	at := now.Add(time.Minute)
	eventually(t, func(ct *assert.CollectT) bool {
		return instantCount(ct, all, `count(last_over_time(relabel_test_metric[5m]))`, at) == 20 &&
			instantCount(ct, subset, `count(last_over_time(relabel_test_metric[5m]))`, at) == 15
	}, 60*time.Second, 200*time.Millisecond, "all: 20 series; subset: the 15 not from dev")
	require.Zero(t, instantCount(t, subset, `count(last_over_time(relabel_test_metric{env="dev"}[5m]))`, at))
	require.Equal(t, 15.0, instantCount(t, subset, `count(last_over_time(relabel_test_metric{replica="b"}[5m]))`, at), "relabelled")
	require.Zero(t, instantCount(t, all, `count(last_over_time(relabel_test_metric{replica="b"}[5m]))`, at), "the other backend is not relabelled")
	require.Equal(t, 5.0, instantCount(t, all, `count(last_over_time(relabel_test_metric{env="dev"}[5m]))`, at))
	metrics := ing.url("/metrics")
	require.Equal(t, 5.0, metricSum(metrics, `promgov_forward_relabel_dropped_series_total{backend="subset"}`))
	require.Equal(t, 15.0, metricSum(metrics, `promgov_forward_sent_samples_total{backend="subset"}`))
	require.Equal(t, 20.0, metricSum(metrics, `promgov_forward_sent_samples_total{backend="all"}`))
}
