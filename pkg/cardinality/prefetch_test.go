package cardinality

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestPrefetchSameDecisions: observing series prepared by Prefetch decides
// and counts exactly like observing them unprepared, refusals included,
// whether a batch's metrics alternate or its series come metric by metric
// (Prefetch then looks a metric up once), and when its tenants alternate
// (Prefetch then switches the tenant it holds read-locked, unknown tenants
// included in the first round; no tenant's lock is left held).
func TestPrefetchSameDecisions(t *testing.T) {
	for name, tc := range map[string]struct {
		tenants, metrics []string
		grouped          bool // all series of a metric together
	}{
		"alternating metrics": {tenants: []string{"t"}, metrics: []string{"a", "b"}},
		"metric by metric":    {tenants: []string{"t"}, metrics: []string{"a", "b"}, grouped: true},
		"alternating tenants": {tenants: []string{"t", "u"}, metrics: []string{"a", "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.Defaults.MaxSeriesPerMetric = 30
			c := newClock()
			plain, prepared := newTracker(t, cfg, c), newTracker(t, cfg, c)
			now := c.now()
			var batch []Series
			for round := range 3 {
				batch = batch[:0]
				if tc.grouped {
					for _, metric := range tc.metrics {
						for i := range 40 {
							batch = append(batch, *mkSeries(tc.tenants[0], metric, i+round*5))
						}
					}
				} else {
					for i := range 40 {
						for _, metric := range tc.metrics {
							for _, tenant := range tc.tenants {
								batch = append(batch, *mkSeries(tenant, metric, i+round*5))
							}
						}
					}
				}
				for start := 0; start < len(batch); start += 16 {
					chunk := batch[start:min(start+16, len(batch))]
					prepared.Prefetch(chunk)
					for i := range chunk {
						want := plain.Observe(&Series{Tenant: chunk[i].Tenant, Metric: chunk[i].Metric, Hash: chunk[i].Hash, Labels: chunk[i].Labels, Samples: 1, Bytes: 100}, now)
						got := prepared.Observe(&chunk[i], now)
						require.Equal(t, want, got, "round %d series %d", round, start+i)
						require.Nil(t, chunk[i].m, "a prepared series' hint is used once")
					}
					requireTenantsUnlocked(t, prepared)
				}
			}
			pairs := float64(len(tc.tenants) * len(tc.metrics))
			require.Equal(t, plain.nAdmitted.Load(), prepared.nAdmitted.Load())
			require.EqualValues(t, 30*pairs, prepared.nAdmitted.Load())
			require.Equal(t, 120*pairs, testutil.ToFloat64(plain.m.observed))
			require.Equal(t, 120*pairs, testutil.ToFloat64(prepared.m.observed), "a prepared series is counted once, by Prefetch")
		})
	}
}

// requireTenantsUnlocked fails if any of tr's tenants is locked, as a read
// lock Prefetch failed to release would leave it.
func requireTenantsUnlocked(t *testing.T, tr *Tracker) {
	t.Helper()
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	for name, tn := range tr.tenants {
		require.True(t, tn.mu.TryLock(), "tenant %q is still locked", name)
		tn.mu.Unlock()
	}
}

// TestPrefetchStaleHint: a hint that no longer matches the series (its
// metric changed after Prefetch) or names a metric swept meanwhile is not
// used; the series is observed under its own metric.
func TestPrefetchStaleHint(t *testing.T) {
	cfg := testConfig()
	c := newClock()
	tr := newTracker(t, cfg, c)
	now := c.now()
	tr.Observe(mkSeries("t", "a", 1), now)
	tr.Observe(mkSeries("t", "b", 1), now)

	ss := []Series{*mkSeries("t", "a", 2)}
	tr.Prefetch(ss)
	require.NotNil(t, ss[0].m)
	ss[0].Metric = "b" // changed after Prefetch
	require.True(t, tr.Observe(&ss[0], now).Admit)
	tr.Prefetch([]Series{*mkSeries("t", "a", 3)}) // a does not count b's series
	rows := seriesByMetric(t, tr)
	require.Equal(t, map[string]uint64{"a": 1, "b": 2}, rows)

	ss = []Series{*mkSeries("t", "a", 4)}
	tr.Prefetch(ss)
	m := ss[0].m
	m.mu.Lock()
	m.dead = true // swept between Prefetch and Observe
	m.mu.Unlock()
	tr.tenant("t").mu.Lock()
	delete(tr.tenant("t").metrics, "a")
	tr.tenant("t").mu.Unlock()
	require.True(t, tr.Observe(&ss[0], now).Admit)
	require.Equal(t, map[string]uint64{"a": 1, "b": 2}, seriesByMetric(t, tr), "observed on a new state of a")
}

func seriesByMetric(t *testing.T, tr *Tracker) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, tn := range tr.tenantList() {
		for _, m := range tn.metricList() {
			m.mu.Lock()
			cur, _ := m.series.maxEpoch()
			n, _, err := m.series.window(cur, tr.n, tr.cfg.Precision, false)
			m.mu.Unlock()
			require.NoError(t, err)
			out[m.name] = n
		}
	}
	return out
}
