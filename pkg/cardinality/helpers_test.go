package cardinality

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0).UTC()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func testConfig() Config {
	c := DefaultConfig()
	c.Window = time.Hour
	c.SubWindows = 6
	return c
}

func newTracker(t testing.TB, cfg Config, c *clock) *Tracker {
	t.Helper()
	tr, err := New(cfg, Options{Now: c.now})
	require.NoError(t, err)
	return tr
}

func ptr(v int64) *int64 { return &v }

// mkSeries returns series i of metric in tenant with labels id=i and
// extra label pairs.
func mkSeries(tenant, metric string, i int, extra ...string) *Series {
	b := labels.NewScratchBuilder(2 + len(extra)/2)
	b.Add(model.MetricNameLabel, metric)
	b.Add("id", strconv.Itoa(i))
	for j := 0; j+1 < len(extra); j += 2 {
		b.Add(extra[j], extra[j+1])
	}
	b.Sort()
	ls := b.Labels()
	return &Series{Tenant: tenant, Metric: metric, Hash: ls.Hash(), Labels: ls, Samples: 1, Bytes: 100}
}
