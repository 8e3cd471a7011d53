package gctune

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLimit(t *testing.T) {
	cfg := Config{Tune: true, HeadroomRatio: 0.25, MinHeadroomBytes: 32 << 20}
	for name, tc := range map[string]struct {
		s    Stats
		want int64
	}{
		"small heap: the minimum headroom": {
			s:    Stats{Live: 10 << 20, Total: 60 << 20, Released: 5 << 20, Free: 10 << 20, Objects: 30 << 20, Unused: 5 << 20},
			want: 10<<20 + 10<<20 + 32<<20,
		},
		"large heap: a quarter of it": {
			s:    Stats{Live: 400 << 20, Total: 900 << 20, Released: 100 << 20, Free: 50 << 20, Objects: 700 << 20, Unused: 30 << 20},
			want: 20<<20 + 400<<20 + 100<<20,
		},
		"unswept garbage does not lower it": {
			s:    Stats{Live: 100 << 20, Total: 300 << 20, Objects: 280 << 20, Unused: 10 << 20},
			want: 10<<20 + 100<<20 + 32<<20,
		},
		"figures read mid-change never give less than live + headroom": {
			s:    Stats{Live: 100 << 20, Total: 100 << 20, Objects: 200 << 20},
			want: 100<<20 + 32<<20,
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Limit(cfg, tc.s))
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg     Config
		wantErr string
	}{
		"default":               {cfg: DefaultConfig()},
		"off ignores the rest":  {cfg: Config{Tune: false, HeadroomRatio: -1}},
		"ratio zero":            {cfg: Config{Tune: true, HeadroomRatio: 0, MinHeadroomBytes: 32 << 20}, wantErr: "gc.headroom_ratio 0: use a fraction in (0, 1]"},
		"ratio above GOGC=100":  {cfg: Config{Tune: true, HeadroomRatio: 2, MinHeadroomBytes: 32 << 20}, wantErr: "gc.headroom_ratio 2"},
		"headroom too small":    {cfg: Config{Tune: true, HeadroomRatio: 0.25, MinHeadroomBytes: 1 << 20}, wantErr: "gc.min_headroom_bytes 1048576: use at least 4194304"},
		"headroom at the bound": {cfg: Config{Tune: true, HeadroomRatio: 1, MinHeadroomBytes: 4 << 20}},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// ballast is pointer-free live heap the tests hold.
var ballast []byte

// TestTunerFollowsTheLiveHeap runs a real Tuner against this process's
// runtime: the limit follows the live heap up and down through real
// collections, and Run restores the limit it found.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	cfg := Config{Tune: true, HeadroomRatio: 0.25, MinHeadroomBytes: 8 << 20}
	tu := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tu.cfg.Tune = true // whatever the test's environment says
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tu.Run(ctx) }()

	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	ballast = make([]byte, 128<<20)
	// After a collection finds 128 MiB live, the limit is that plus a
	// quarter (32 MiB) plus the runtime's other memory (a few MiB here).
	require.Eventually(t, func() bool {
		runtime.GC()
		l := limit()
		return l >= 128<<20+32<<20 && l < 128<<20+32<<20+64<<20
	}, tTimeout, tTick, "the limit follows 128 MiB live: %d", limit())

	// Once the ballast is garbage, the next collections lower it again.
	ballast = nil
	require.Eventually(t, func() bool {
		runtime.GC()
		l := limit()
		return l >= 8<<20 && l < 96<<20
	}, tTimeout, tTick, "the limit falls with the live heap: %d", limit())

	cancel()
	require.NoError(t, <-done)
	require.Equal(t, before, limit(), "Run restores the limit it found")
	// A collection after Run returned leaves the limit alone.
	runtime.GC()
	runtime.GC()
	require.Equal(t, before, limit())
}

func TestEnvironmentWins(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			before := debug.SetMemoryLimit(-1)
			t.Setenv(env, "off")
			tu := New(DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.False(t, tu.cfg.Tune)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tu.Run(ctx) }()
			runtime.GC()
			require.Equal(t, before, debug.SetMemoryLimit(-1), "an off Tuner sets nothing")
			cancel()
			require.NoError(t, <-done)
		})
	}
}

const (
	tTimeout = 10 * time.Second
	tTick    = 10 * time.Millisecond
)
