package plugin

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// loadWith loads through l and closes the plugin at the end of the test
// unless the test did.
func loadWith(t testing.TB, l *Loader, name string, cfg Config) *Plugin {
	t.Helper()
	p, err := l.Load(context.Background(), name, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	return p
}

// actions evaluates one series per team value and returns the actions.
func actions(t *testing.T, p *Plugin, teams ...string) []Action {
	t.Helper()
	in := make([]Input, len(teams))
	for i, team := range teams {
		in[i] = Input{Tenant: "t", Labels: labels.FromStrings("__name__", "up", "team", team)}
	}
	out, err := p.Eval(context.Background(), in, nil)
	require.NoError(t, err)
	acts := make([]Action, len(out))
	for i, v := range out {
		acts[i] = v.Action
	}
	return acts
}

// TestLoaderSharesModules: two plugins of one module loaded through a
// Loader each answer with their own configuration; closing one leaves the
// other answering; the Loader closes once they are closed and then refuses
// to load, counting the refusal.
func TestLoaderSharesModules(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	l := NewLoader(m, nil)
	module := builder.Build(t, requireTeamPkg)

	core, err := l.Load(context.Background(), "core", Config{Module: module, Config: `{"teams":["core"]}`})
	require.NoError(t, err)
	edge, err := l.Load(context.Background(), "edge", Config{Module: module, Config: `{"teams":["edge"]}`, MaxInstances: 1})
	require.NoError(t, err)

	require.Equal(t, []Action{Keep, Drop}, actions(t, core, "core", "edge"))
	require.Equal(t, []Action{Drop, Keep}, actions(t, edge, "core", "edge"))

	require.NoError(t, core.Close(context.Background()))
	require.Equal(t, []Action{Drop, Keep}, actions(t, edge, "core", "edge"), "the other plugin still answers")

	// A third plugin of the module, loaded after the first closed while
	// the second still holds the compiled code.
	third, err := l.Load(context.Background(), "third", Config{Module: module, Config: `{"teams":["core","edge"]}`})
	require.NoError(t, err)
	require.Equal(t, []Action{Keep, Keep}, actions(t, third, "core", "edge"))

	require.NoError(t, edge.Close(context.Background()))
	require.NoError(t, third.Close(context.Background()))
	require.NoError(t, l.Close(context.Background()))
	require.NoError(t, l.Close(context.Background()), "Close is idempotent")

	_, err = l.Load(context.Background(), "late", Config{Module: module, Config: `{"teams":["core"]}`})
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, KindClosed, pe.Kind)
	require.ErrorContains(t, err, `plugin "late": closed: the plugin loader is closed`)
	require.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("late", string(KindClosed))))
}

// TestLoaderCloseBeforePlugins: closing the Loader while its plugins are
// open refuses new loads but leaves them working — a plugin can still start
// a fresh instance from the shared compiled code — until they close.
func TestLoaderCloseBeforePlugins(t *testing.T) {
	l := NewLoader(nil, nil)
	p, err := l.Load(context.Background(), "hostile", Config{Module: builder.Build(t, hostilePkg), Config: "nth-panic", MaxInstances: 1})
	require.NoError(t, err)
	require.NoError(t, l.Close(context.Background()))

	in := someInputs(1)
	in[0].Labels = labels.FromStrings("__name__", "boom")
	_, err = p.Eval(context.Background(), in, nil)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, KindTrap, pe.Kind, "%v", err)
	out, err := p.Eval(context.Background(), someInputs(2), nil)
	require.NoError(t, err, "a fresh instance starts after the Loader's Close")
	require.Equal(t, Keep, out[0].Action)

	_, err = l.Load(context.Background(), "hostile", Config{Module: builder.Build(t, hostilePkg)})
	require.ErrorAs(t, err, &pe)
	require.Equal(t, KindClosed, pe.Kind)
	require.NoError(t, p.Close(context.Background()))
}

// TestLoaderKeepsMemoryLimits: plugins that share a compiled module keep
// their own max_memory_pages: the limit applies to each plugin's memory,
// whichever plugin compiled the module first, and a limit below the
// module's minimum is refused even when the module is already compiled.
func TestLoaderKeepsMemoryLimits(t *testing.T) {
	l := NewLoader(nil, nil)
	t.Cleanup(func() { require.NoError(t, l.Close(context.Background())) })
	module := builder.Build(t, hostilePkg)

	cases := []struct {
		name  string
		pages uint32
	}{
		{"large first (compiles)", 1024},
		{"small second (cached)", 128},
		{"default", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := loadWith(t, l, "hostile", Config{Module: module, Config: "keep", MaxMemoryPages: tc.pages, MaxInstances: 1})
			limit := uint32(p.cfg.MaxMemoryPages)
			inst := <-p.idle
			defer func() { p.idle <- inst }()
			pages := inst.mem.Size() / 65536
			require.Less(t, pages, limit)
			_, ok := inst.mem.Grow(limit - pages + 1)
			require.False(t, ok, "grow past %d pages", limit)
			_, ok = inst.mem.Grow(limit - pages)
			require.True(t, ok, "grow to %d pages", limit)
		})
	}

	t.Run("memory bomb stops at the small limit", func(t *testing.T) {
		// A generous deadline, as in hostile_test.go: under -race on a
		// busy machine the bomb can take over 100ms to reach the limit, and
		// only the memory limit is under test here.
		p := loadWith(t, l, "bomb", Config{Module: module, Config: "bomb", MaxMemoryPages: 128, MaxInstances: 1, Timeout: model.Duration(5 * time.Second)})
		_, err := p.Eval(context.Background(), someInputs(1), nil)
		var pe *Error
		require.ErrorAs(t, err, &pe)
		require.Equal(t, KindMemory, pe.Kind, "%v", err)
	})

	t.Run("limit below the minimum of a compiled module", func(t *testing.T) {
		_ = loadWith(t, l, "rt", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`})
		_, err := l.Load(context.Background(), "small", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`, MaxMemoryPages: 8})
		require.ErrorContains(t, err, "raise max_memory_pages")
	})
}

// BenchmarkLoad: a load that compiles the module (cold: a new Loader each
// time) against one whose module a Loader has compiled for a plugin still
// open (warm): start-up and self-test only.
func BenchmarkLoad(b *testing.B) {
	module := builder.Build(b, requireTeamPkg)
	code, err := os.ReadFile(module)
	require.NoError(b, err)
	b.Logf("module: %d bytes", len(code))
	cfg := Config{Module: module, Config: `{"teams":["core"]}`, MaxInstances: 1}
	ctx := context.Background()

	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l := NewLoader(nil, nil)
			p, err := l.Load(ctx, "rt", cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
			if err := l.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		l := NewLoader(nil, nil)
		keep, err := l.Load(ctx, "keep", cfg) // holds the compiled module
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			p, err := l.Load(ctx, "rt", cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
		require.NoError(b, keep.Close(ctx))
		require.NoError(b, l.Close(ctx))
	})
}
