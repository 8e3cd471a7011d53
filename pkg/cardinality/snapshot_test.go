package cardinality

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// populate fills tr with two tenants; metric "m" of t1 is pushed past its
// limit of 20.
func populate(t *testing.T, tr *Tracker, c *clock) {
	t.Helper()
	for step := range 3 {
		now := c.advance(tr.sub)
		tr.Rotate(now)
		for i := range 30 {
			id := i + step
			s := mkSeries("t1", "m", id, "pod", string(rune('a'+id%5)))
			s.Samples, s.Bytes = 2, 50
			tr.Observe(s, now)
			tr.Observe(mkSeries("t2", "n", i*step), now)
		}
	}
}

func allRows(t *testing.T, tr *Tracker) ([]MetricCardinality, []MetricCardinality, []TenantCardinality) {
	t.Helper()
	ctx := context.Background()
	ms, err := tr.Metrics(ctx, Query{Limit: -1})
	require.NoError(t, err)
	m, err := tr.Metric(ctx, "m", Query{})
	require.NoError(t, err)
	ts, err := tr.Tenants(ctx, Query{})
	require.NoError(t, err)
	return ms, m, ts
}

func TestSnapshotRoundTrip(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 20
	cfg.Limits.Defaults.MaxValuesPerLabel = 100
	cfg.SnapshotPath = filepath.Join(t.TempDir(), "cardinality.snap")
	a := newTracker(t, cfg, c)
	populate(t, a, c)
	require.NoError(t, a.Close(context.Background()))
	require.Positive(t, testutil.ToFloat64(a.m.snapshotBytes))

	b := newTracker(t, cfg, c)
	wantM, wantOne, wantT := allRows(t, a)
	gotM, gotOne, gotT := allRows(t, b)
	require.Equal(t, wantM, gotM)
	require.Equal(t, wantOne, gotOne)
	require.Equal(t, wantT, gotT)
	require.Equal(t, uint64(32), wantOne[0].Series)
	require.Equal(t, uint64(12), wantOne[0].RefusedSeries)
	require.Equal(t, a.nAdmitted.Load(), b.nAdmitted.Load())

	// Limits still hold: admitted series flow, new ones are refused.
	now := c.now()
	for i := range 20 {
		require.True(t, b.Observe(mkSeries("t1", "m", i, "pod", string(rune('a'+i%5))), now).Admit, "series %d", i)
	}
	require.False(t, b.Observe(mkSeries("t1", "m", 500, "pod", "a"), now).Admit)
	files, err := os.ReadDir(filepath.Dir(cfg.SnapshotPath))
	require.NoError(t, err)
	require.Len(t, files, 1, "no temporary files left behind")
}

func TestSnapshotRestoreErrors(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	a := newTracker(t, cfg, c)
	populate(t, a, c)
	var buf bytes.Buffer
	require.NoError(t, a.Snapshot(&buf))
	good := buf.Bytes()

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	other := cfg
	other.Precision = 12
	for name, tc := range map[string]struct {
		cfg  Config
		data []byte
		want error
	}{
		"flipped byte": {cfg, flipped, ErrCorrupt},
		"truncated":    {cfg, good[:len(good)-10], ErrCorrupt},
		"empty":        {cfg, nil, ErrCorrupt},
		"precision":    {other, good, ErrIncompatible},
	} {
		t.Run(name, func(t *testing.T) {
			b := newTracker(t, tc.cfg, c)
			require.ErrorIs(t, b.Restore(tc.data), tc.want)
			rows, err := b.Metrics(context.Background(), Query{})
			require.NoError(t, err)
			require.Empty(t, rows, "nothing merged from a bad snapshot")
		})
	}

	// A damaged file on start is logged and ignored.
	cfg.SnapshotPath = filepath.Join(t.TempDir(), "snap")
	require.NoError(t, os.WriteFile(cfg.SnapshotPath, flipped, 0o600))
	b := newTracker(t, cfg, c)
	require.Equal(t, 1.0, testutil.ToFloat64(b.m.snapshotErrors))
	// Restoring into a tracker that already has state merges.
	require.NoError(t, b.Restore(good))
	require.NoError(t, b.Restore(good))
	wantM, _, _ := allRows(t, a)
	gotM, _, _ := allRows(t, b)
	for i := range wantM {
		require.Equal(t, wantM[i].Series, gotM[i].Series, "merging a snapshot twice is idempotent for sketches")
	}
}

func TestRunSnapshotsPeriodically(t *testing.T) {
	cfg := testConfig()
	cfg.RefreshInterval = 5 * time.Millisecond
	cfg.SnapshotInterval = 5 * time.Millisecond
	cfg.SnapshotPath = filepath.Join(t.TempDir(), "snap")
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	tr.Observe(mkSeries("t", "m", 1), time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	require.Eventually(t, func() bool {
		_, err := os.Stat(cfg.SnapshotPath)
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	require.ErrorIs(t, tr.Close(cctx), context.Canceled)
}

func TestHandoffExportImport(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 20
	cfg.Limits.Defaults.MaxValuesPerLabel = 100
	old, next := newTracker(t, cfg, c), newTracker(t, cfg, c)
	populate(t, old, c)
	now := c.now()
	// The new owner already saw a few series of the metric before the pull.
	next.Observe(mkSeries("t1", "m", 2, "pod", "c"), now)

	done := next.BeginTransfer()
	data, err := old.ExportMetric("t1", "m", now)
	require.NoError(t, err)
	tenant, metric, err := next.ImportMetric(data, now)
	require.NoError(t, err)
	done()
	require.Equal(t, [2]string{"t1", "m"}, [2]string{tenant, metric})

	want := metricRow(t, old, "t1", "m")
	got := metricRow(t, next, "t1", "m")
	require.Equal(t, want.Series, got.Series)
	require.Equal(t, want.RefusedSeries, got.RefusedSeries)
	require.Equal(t, want.Labels, got.Labels)
	require.InDelta(t, want.SamplesRate, got.SamplesRate, want.SamplesRate*0.05)
	for i := range 20 {
		require.True(t, next.Observe(mkSeries("t1", "m", i, "pod", string(rune('a'+i%5))), now).Admit)
	}
	require.False(t, next.Observe(mkSeries("t1", "m", 999, "pod", "a"), now).Admit, "the limit holds right after the handoff")

	require.ElementsMatch(t, []MetricKey{{"t1", "m"}, {"t2", "n"}}, old.TrackedMetrics())
	old.ForgetMetric("t1", "m")
	require.Equal(t, []MetricKey{{"t2", "n"}}, old.TrackedMetrics())
	_, err = old.ExportMetric("t1", "m", now)
	require.ErrorIs(t, err, ErrNotTracked)
	_, err = old.ExportMetric("nobody", "m", now)
	require.ErrorIs(t, err, ErrNotTracked)
	_, _, err = next.ImportMetric(data[:len(data)-1], now)
	require.ErrorIs(t, err, ErrCorrupt)
}
