package forward

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDelay(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: time.Second}
	tests := map[string]struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		"first retry":                    {attempt: 0, lo: 8 * time.Millisecond, hi: 10 * time.Millisecond},
		"doubles":                        {attempt: 1, lo: 16 * time.Millisecond, hi: 20 * time.Millisecond},
		"grows exponentially":            {attempt: 3, lo: 64 * time.Millisecond, hi: 80 * time.Millisecond},
		"capped":                         {attempt: 7, lo: 800 * time.Millisecond, hi: time.Second},
		"capped far out":                 {attempt: 50, lo: 800 * time.Millisecond, hi: time.Second},
		"no overflow":                    {attempt: 1 << 20, lo: 800 * time.Millisecond, hi: time.Second},
		"retry-after wins":               {attempt: 0, retryAfter: time.Hour, lo: time.Hour, hi: time.Hour},
		"retry-after above the cap wins": {attempt: 50, retryAfter: 3 * time.Second, lo: 3 * time.Second, hi: 3 * time.Second},
		"short retry-after ignored":      {attempt: 4, retryAfter: time.Nanosecond, lo: 128 * time.Millisecond, hi: 160 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := b.delay(tc.attempt, tc.retryAfter)
				require.GreaterOrEqual(t, d, tc.lo)
				require.LessOrEqual(t, d, tc.hi)
				seen[d] = true
			}
			if tc.lo != tc.hi {
				require.Greater(t, len(seen), 1, "the delay is jittered")
			}
		})
	}
}

func TestBackoffGrowsGeometrically(t *testing.T) {
	// Whatever the jitter draws, each delay is between 2·(1-j) and
	// 2/(1-j) times the previous one until the cap.
	b := backoff{min: time.Millisecond, max: time.Hour}
	for range 100 {
		prev := b.delay(0, 0)
		for attempt := 1; attempt < 20; attempt++ {
			d := b.delay(attempt, 0)
			ratio := float64(d) / float64(prev)
			require.GreaterOrEqual(t, ratio, 2*(1-BackoffJitter)-1e-9, "attempt %d", attempt)
			require.LessOrEqual(t, ratio, 2/(1-BackoffJitter)+1e-9, "attempt %d", attempt)
			prev = d
		}
	}
}

// passAsync calls g.pass in a goroutine and returns the channel of its
// ticket.
func passAsync(ctx context.Context, wg *sync.WaitGroup, g *gate) <-chan ticket {
	ch := make(chan ticket, 1)
	wg.Go(func() {
		if tk, err := g.pass(ctx); err == nil {
			ch <- tk
		}
		close(ch)
	})
	return ch
}

func requireBlocked(t *testing.T, ch <-chan ticket) {
	t.Helper()
	select {
	case tk, ok := <-ch:
		t.Fatalf("pass returned (%v, %v) while it should wait", tk, ok)
	default:
	}
}

func TestGate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var changes []time.Duration
	var mu sync.Mutex
	g := newGate(backoff{min: 20 * time.Millisecond, max: time.Second}, func(_ bool, d time.Duration) {
		mu.Lock()
		changes = append(changes, d)
		mu.Unlock()
	})

	// Closed at the start: the first request probes alone.
	probe, err := g.pass(ctx)
	require.NoError(t, err)
	require.True(t, probe.probe)
	require.True(t, g.failing())
	waiting := passAsync(ctx, &wg, g)
	requireBlocked(t, waiting)

	// Written: open for everybody, at once.
	g.done(probe, outcomeWritten, 0)
	tk := <-waiting
	require.False(t, tk.probe)
	require.False(t, g.failing())
	for range 3 {
		tk, err := g.pass(ctx)
		require.NoError(t, err)
		require.False(t, tk.probe)
	}

	// Three requests were in flight when the backend started failing:
	// the first failure closes the gate, the others do not count.
	start := time.Now()
	g.done(ticket{}, outcomeFailed, 0)
	g.done(ticket{}, outcomeFailed, 0)
	g.done(ticket{}, outcomeFailed, 0)
	require.True(t, g.failing())
	require.Equal(t, 1, g.attempt, "failures of requests sent while open count once")

	// Only one waiter becomes the probe, after the first delay.
	a, b := passAsync(ctx, &wg, g), passAsync(ctx, &wg, g)
	var first ticket
	var other <-chan ticket
	select {
	case first = <-a:
		other = b
	case first = <-b:
		other = a
	}
	require.True(t, first.probe)
	require.GreaterOrEqual(t, time.Since(start), 16*time.Millisecond, "no probe before the backoff delay")
	requireBlocked(t, other)

	// The probe fails with a Retry-After: the next probe waits for it.
	start = time.Now()
	g.done(first, outcomeFailed, 100*time.Millisecond)
	second := <-other
	require.True(t, second.probe)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "Retry-After honoured")
	require.Equal(t, 2, g.attempt)

	// A refused request (4xx) lets the next probe go at once, without
	// reopening the gate or changing the delay.
	g.done(second, outcomeRefused, 0)
	third, err := g.pass(ctx)
	require.NoError(t, err)
	require.True(t, third.probe)
	require.True(t, g.failing())
	require.Equal(t, 2, g.attempt)

	// A failing probe doubles the delay again; a written one resets it.
	g.done(third, outcomeFailed, 0)
	require.Equal(t, 3, g.attempt)
	mu.Lock()
	last := changes[len(changes)-1]
	mu.Unlock()
	require.GreaterOrEqual(t, last, 64*time.Millisecond)
	require.LessOrEqual(t, last, 80*time.Millisecond)
	fourth, err := g.pass(ctx)
	require.NoError(t, err)
	g.done(fourth, outcomeWritten, 0)
	require.False(t, g.failing())
	require.Zero(t, g.attempt)

	// A request that was in flight while the gate reopened and then fails
	// closes it again with the first delay (the backoff was reset).
	g.done(ticket{}, outcomeFailed, 0)
	require.Equal(t, 1, g.attempt)

	// Waiting ends with the context.
	probe5, err := g.pass(ctx)
	require.NoError(t, err)
	require.True(t, probe5.probe)
	cctx, ccancel := context.WithCancel(ctx)
	blocked := passAsync(cctx, &wg, g)
	requireBlocked(t, blocked)
	ccancel()
	_, ok := <-blocked
	require.False(t, ok, "pass fails when its context ends")
	g.done(probe5, outcomeNone, 0)
}
