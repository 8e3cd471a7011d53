package rules

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// usageSet is the usage analysis' answer for the tests: the names it holds
// are unused; set replaces them and bumps the generation.
type usageSet struct {
	names atomic.Pointer[map[string]bool]
	gen   atomic.Uint64
}

func (u *usageSet) set(names ...string) {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	u.names.Store(&m)
	u.gen.Add(1)
}

func (u *usageSet) Unused(metric string) bool { return (*u.names.Load())[metric] }
func (u *usageSet) Generation() uint64        { return u.gen.Load() }

func TestUnusedKind(t *testing.T) {
	u := &usageSet{}
	u.set("lonely_total")
	cfg, err := LoadConfig([]byte(`
rules:
  - {name: tag-unused, action: tag, unused: {}, scope: {tenants: [team-a]}}
  - {name: usage.drop_unused, action: drop, unused: {}}
`))
	require.NoError(t, err)

	// Where no usage analysis runs, the kind is refused with the reason.
	_, err = Compile(cfg, nil)
	require.ErrorContains(t, err, "need the usage analysis of a distributor")

	reg := prometheus.NewRegistry()
	m := NewManager(nil, reg)
	m.SetUsagePolicy(u)
	require.NoError(t, m.Reload(cfg))
	e := m.Active().Engine
	require.Len(t, e.live, 2)

	// The tag rule is scoped to team-a; the drop rule sees every tenant,
	// after the tag (on the final labels).
	res := e.Apply(series(t, "team-a", `lonely_total{job="a"}`, ""), nil)
	require.Equal(t, Dropped, res.Action)
	require.Equal(t, "usage.drop_unused", res.Rule)
	require.Contains(t, res.Reason, "metric lonely_total is used by no dashboard, alert or query")
	require.Equal(t, "tag-unused", res.Labels.Get(DefaultTagLabel))

	// A used series is remembered as untouched by the engine's cache;
	// when the selection changes, what was remembered is not replayed.
	used := series(t, "team-b", `busy_total{job="a"}`, "")
	for range 3 {
		require.Equal(t, Kept, e.Apply(used, nil).Action)
	}
	u.set("busy_total")
	require.Equal(t, Dropped, e.Apply(used, nil).Action)
	u.set()
	require.Equal(t, Kept, e.Apply(used, nil).Action)
	require.Equal(t, Kept, e.Apply(series(t, "team-b", `lonely_total{job="a"}`, ""), nil).Action)
	require.Equal(t, 2.0, testutil.ToFloat64(m.Metrics().series.WithLabelValues("usage.drop_unused", "drop", "enforce")))

	// A trace shows the step like any rule's.
	u.set("lonely_total")
	var tr Trace
	e.Apply(series(t, "team-b", `lonely_total{job="a"}`, ""), &tr)
	last := tr.Steps[len(tr.Steps)-1]
	require.Equal(t, KindUnused, last.Kind)
	require.Equal(t, ActionDrop, last.Action)
	require.NoError(t, m.Close(context.Background()))

	// Rewrite cannot fix an unused metric.
	_, err = LoadConfig([]byte("rules:\n  - {name: x, action: rewrite, unused: {}}\n"))
	require.ErrorContains(t, err, "an unused metric cannot be fixed by action rewrite")
}
