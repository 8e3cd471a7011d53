package integration

import (
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Before the reload: requests (removed by it) and changed (its interval
// goes from 5 s to 10 s); after: changed, and added.
const (
	reloadAggBefore = `aggregations:
- {name: requests, match: rl_requests_total, without: [pod], interval: 5s, max_delay: 3s}
- {name: changed, match: rl_changed_total, without: [pod], interval: 5s, max_delay: 3s}
`
	reloadAggAfter = `aggregations:
- {name: changed, match: rl_changed_total, without: [pod], interval: 10s, max_delay: 3s}
- {name: added, match: rl_added_total, without: [pod], interval: 5s, max_delay: 3s}
`
)

// reloadAggBody is one step of the inputs: three counters of 4 pods each
// (svc a: even pods, b: odd ones), pod p growing p+1 per step, pod 2
// resetting at step 25 (after the reload).
func reloadAggBody(t *testing.T, step int, ts time.Time) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for _, metric := range []string{"rl_requests_total", "rl_changed_total", "rl_added_total"} {
		for p := range 4 {
			v := float64(step * (p + 1))
			if p == 2 && step >= 25 {
				v = float64((step - 25) * (p + 1))
			}
			ls := labels.FromStrings("__name__", metric, "pod", "pod-"+strconv.Itoa(p), "svc", []string{"a", "b"}[p%2])
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(ls, nil),
				Samples:    []writev2.Sample{{Value: v, Timestamp: ts.UnixMilli()}},
				Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
			})
		}
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// increaseWhere sums, over every series of selector, the increase between
// consecutive stored samples whose time (s) keep accepts, resets corrected:
// what an exact aggregation of those samples grows by.
func increaseWhere(t T, b *backend, selector string, keep func(ts float64) bool) float64 {
	t.Helper()
	total := 0.0
	for _, s := range b.rawSamples(t, selector) {
		prev := math.NaN()
		for _, v := range s.Values {
			if !keep(v[0].(float64)) {
				continue
			}
			x, err := strconv.ParseFloat(v[1].(string), 64)
			require.NoError(t, err)
			switch {
			case math.IsNaN(prev):
			case x >= prev:
				total += x - prev
			default:
				total += x
			}
			prev = x
		}
	}
	return total
}

// sampleTimes returns the times (s) of every stored sample of selector.
func sampleTimes(t *testing.T, b *backend, selector string) []float64 {
	t.Helper()
	var ts []float64
	for _, s := range b.rawSamples(t, selector) {
		for _, v := range s.Values {
			ts = append(ts, v[0].(float64))
		}
	}
	return ts
}

// outputPoints returns the times (ms) and values of one output series.
func outputPoints(t *testing.T, b *backend, selector string) ([]int64, []float64) {
	t.Helper()
	all := b.rawSamples(t, selector)
	require.Len(t, all, 1, "one output series for %s: %v", selector, all)
	var ts []int64
	var vs []float64
	for _, s := range all {
		for _, v := range s.Values {
			x, err := strconv.ParseFloat(v[1].(string), 64)
			require.NoError(t, err)
			ts = append(ts, int64(math.Round(v[0].(float64)*1000)))
			vs = append(vs, x)
		}
	}
	return ts, vs
}

// TestAggregationRulesReload reloads a running ingester's aggregation
// rules (POST /-/reload) while counters flow, against a control Prometheus
// that receives the same inputs: the added rule's outputs appear in the
// backend and count exactly what was pushed after the reload; the removed
// rule's outputs stop at the end of the interval open at the reload, with
// exactly the increase before it, and its inputs are written unaggregated
// from there on; the changed rule's output (same series, 5 s → 10 s
// intervals) stays monotonic, never repeats a timestamp, and ends at
// exactly the inputs' whole increase.
func TestAggregationRulesReload(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	control := startBackend(t)
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	c.distributor = c.startDistributor()
	cfg := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(reloadAggBefore), 0o644))
	ing := cardAddIngester(c, "--config.file="+cfg)
	c.waitActive(1)

	step := 0
	var last time.Time
	push := func(steps int) {
		for range steps {
			ts := time.Now()
			body := reloadAggBody(t, step, ts)
			aggSend(t, c.writeURL(), body, aggTenant)
			aggSend(t, control.writeURL(), body, "")
			last = ts
			step++
			time.Sleep(time.Until(ts.Add(time.Second)))
		}
	}
	push(15)
	require.NoError(t, os.WriteFile(cfg, []byte(reloadAggAfter), 0o644))
	reloadStart := time.Now()
	resp, err := http.Post(ing.url("/-/reload"), "", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	reloadEnd := time.Now()
	require.Equal(t, 1.0, metricSum(ing.url("/metrics"), "promgov_config_last_reload_successful"))
	push(25)

	// The changed rule writes every 10 s now: wait for the interval holding
	// the last push.
	lastEnd := last.Truncate(10*time.Second).Add(10*time.Second).UnixMilli() - 1
	eventually(t, func(ct *assert.CollectT) bool {
		return c.backend.count(ct, `min(timestamp({__name__="rl_changed_total:sum_without_pod"}))`)*1000 >= float64(lastEnd)-0.5 &&
			c.backend.count(ct, `count({__name__="rl_added_total:sum_without_pod"})`) == 2
	}, 30*time.Second, 500*time.Millisecond, "the outputs of the last interval never arrived")

	afterReload := func(ts float64) bool { return ts*1000 > float64(reloadEnd.UnixMilli()) }
	for _, svc := range []string{"a", "b"} {
		// Added: its outputs count exactly the inputs pushed after the
		// reload; before it, the inputs were written as they were.
		_, vs := outputPoints(t, c.backend, `{__name__="rl_added_total:sum_without_pod", svc="`+svc+`"}`)
		want := increaseWhere(t, control, `rl_added_total{svc="`+svc+`"}`, afterReload)
		require.Equal(t, want, vs[len(vs)-1], "added, svc=%s: the output is the exact increase pushed after the reload", svc)
		raw := sampleTimes(t, c.backend, `rl_added_total{svc="`+svc+`"}`)
		require.Len(t, raw, 2*15, "added, svc=%s: the inputs before the reload were written, none after", svc)
		for _, ts := range raw {
			require.Less(t, ts*1000, float64(reloadStart.UnixMilli()))
		}
		t.Logf("added rule, svc=%s: output %g = the increase pushed after the reload", svc, vs[len(vs)-1])

		// Removed: the last output is at the end of the interval open at
		// the reload (its hand-over) and holds exactly the inputs'
		// increase before it; from it on the inputs are written as they are.
		ts, vs := outputPoints(t, c.backend, `{__name__="rl_requests_total:sum_without_pod", svc="`+svc+`"}`)
		handover := ts[len(ts)-1] + 1
		require.Zero(t, handover%5000, "removed, svc=%s: the last point closes an interval: %v", svc, ts)
		require.Greater(t, handover, reloadStart.UnixMilli(), "removed, svc=%s: outputs until the reload's interval ends", svc)
		require.LessOrEqual(t, handover, reloadEnd.Add(5*time.Second).UnixMilli(), "removed, svc=%s: outputs stop after the reload's interval", svc)
		before := func(ts float64) bool { return ts*1000 < float64(handover) }
		want = increaseWhere(t, control, `rl_requests_total{svc="`+svc+`"}`, before)
		require.Equal(t, want, vs[len(vs)-1], "removed, svc=%s: the output is the exact increase before the hand-over", svc)
		for i := 1; i < len(vs); i++ {
			require.GreaterOrEqual(t, vs[i], vs[i-1], "removed, svc=%s: monotonic", svc)
		}
		raw = sampleTimes(t, c.backend, `rl_requests_total{svc="`+svc+`"}`)
		all := sampleTimes(t, control, `rl_requests_total{svc="`+svc+`"}`)
		n := 0
		for _, x := range all {
			if !before(x) {
				n++
			}
		}
		require.Len(t, raw, n, "removed, svc=%s: every input from the hand-over on is written, nothing before it", svc)
		for _, x := range raw {
			require.False(t, before(x), "removed, svc=%s: an input before the hand-over was written as well as aggregated", svc)
		}
		t.Logf("removed rule, svc=%s: last output at the hand-over %s (reload at %s), %g = the increase before it; %d inputs written after it",
			svc, time.UnixMilli(handover).UTC().Format("15:04:05.000"), reloadStart.UTC().Format("15:04:05.000"), vs[len(vs)-1], len(raw))

		// Changed: one series, monotonic, no timestamp twice, 10 s
		// intervals after the hand-over, ending at the exact increase.
		ts, vs = outputPoints(t, c.backend, `{__name__="rl_changed_total:sum_without_pod", svc="`+svc+`"}`)
		for i := 1; i < len(vs); i++ {
			require.Greater(t, ts[i], ts[i-1], "changed, svc=%s: no timestamp twice", svc)
			require.GreaterOrEqual(t, vs[i], vs[i-1], "changed, svc=%s: monotonic: %v", svc, vs)
		}
		require.Equal(t, int64(9999), ts[len(ts)-1]%10000, "changed, svc=%s: 10 s intervals after the reload", svc)
		want = exactIncrease(t, control, `rl_changed_total{svc="`+svc+`"}`)
		require.Equal(t, want, vs[len(vs)-1], "changed, svc=%s: the output is the inputs' exact increase across the change", svc)
		require.Empty(t, sampleTimes(t, c.backend, `rl_changed_total{svc="`+svc+`"}`), "changed, svc=%s: no input written", svc)
		t.Logf("changed rule, svc=%s: %d points, monotonic, ends at %g = the inputs' exact increase", svc, len(vs), vs[len(vs)-1])
	}
}
