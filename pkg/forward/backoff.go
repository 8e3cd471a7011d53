package forward

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// BackoffJitter is the largest fraction by which a retry delay is shortened
// at random: the delay before retry n (0-based) is drawn uniformly from
// [(1-BackoffJitter)·c, c] with c = min(MinBackoff·2^n, MaxBackoff). So
// consecutive delays grow by a factor between 2·(1-BackoffJitter) and
// 2/(1-BackoffJitter) until they reach MaxBackoff, and never exceed it
// (a longer Retry-After still wins).
const BackoffJitter = 0.2

// backoff is the retry delay policy.
type backoff struct {
	min, max time.Duration
}

// ceiling is min·2^attempt, capped at max.
func (b backoff) ceiling(attempt int) time.Duration {
	if attempt >= 62 {
		return b.max
	}
	c := b.min << attempt
	if c <= 0 || c > b.max || c>>attempt != b.min {
		return b.max
	}
	return c
}

// delay is the wait before retry number attempt (0-based) after a failure
// whose answer asked for retryAfter (0 if none): the jittered exponential
// delay, or retryAfter when that is longer.
func (b backoff) delay(attempt int, retryAfter time.Duration) time.Duration {
	c := b.ceiling(attempt)
	jitter := time.Duration(float64(c) * BackoffJitter)
	d := c
	if jitter > 0 {
		d -= rand.N(jitter + 1)
	}
	return max(d, retryAfter)
}

// outcome is what one send attempt found out about the backend.
type outcome int

const (
	// outcomeWritten: the backend answered 2xx (fully or partly written).
	outcomeWritten outcome = iota
	// outcomeRefused: the backend answered with a non-recoverable error;
	// it is up, but this says nothing about its health.
	outcomeRefused
	// outcomeFailed: network error, timeout, 5xx or 429.
	outcomeFailed
	// outcomeNone: no request reached the backend (shutdown, invalid batch).
	outcomeNone
)

// gate is the one backoff state shared by every shard of a Forwarder, so
// that a failing backend sees a single retry stream rather than one per
// shard.
//
// While the backend answers, the gate is open and every shard sends
// freely. The first recoverable failure closes it: from then on shards wait
// in pass, and once the backoff delay has passed exactly one of them (the
// probe) is let through with its own pending request. A written answer
// reopens the gate for all shards and resets the backoff; a failure keeps
// it closed for the next, twice as long, delay (or the Retry-After the
// backend asked for, when longer); a refused request (4xx) lets the next
// probe go at once without changing the delay. The gate starts closed with
// no delay, so the first request after a start probes the backend alone.
//
// The gate is safe for concurrent use.
type gate struct {
	policy backoff

	mu       sync.Mutex
	open     bool
	probing  bool          // a probe is in flight
	attempt  int           // failures since the last written answer
	until    time.Time     // closed: no probe before this
	delay    time.Duration // the current backoff delay; 0 while open
	changed  chan struct{} // closed and replaced on every change of state
	onChange func(open bool, delay time.Duration)
}

func newGate(policy backoff, onChange func(open bool, delay time.Duration)) *gate {
	if onChange == nil {
		onChange = func(bool, time.Duration) {}
	}
	return &gate{policy: policy, changed: make(chan struct{}), onChange: onChange}
}

// ticket is a pass through the gate; it must be returned with done.
type ticket struct {
	probe bool
}

// notify wakes every waiter; g.mu held.
func (g *gate) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
	g.onChange(g.open, g.delay)
}

// pass waits until the caller may send: at once while the gate is open,
// otherwise until it reopens or the caller becomes the probe. It fails
// only when ctx ends.
func (g *gate) pass(ctx context.Context) (ticket, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		g.mu.Lock()
		if g.open {
			g.mu.Unlock()
			return ticket{}, nil
		}
		changed := g.changed
		var wait <-chan time.Time
		if !g.probing {
			d := time.Until(g.until)
			if d <= 0 {
				g.probing = true
				g.mu.Unlock()
				return ticket{probe: true}, nil
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			wait = timer.C
		}
		g.mu.Unlock()
		select {
		case <-changed:
		case <-wait:
		case <-ctx.Done():
			return ticket{}, ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// done reports the outcome of the send t allowed. retryAfter is the
// backend's Retry-After of a failure (0 if none).
func (g *gate) done(t ticket, o outcome, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.probe {
		g.probing = false
	}
	switch o {
	case outcomeWritten:
		if !g.open {
			g.open, g.attempt, g.delay = true, 0, 0
			g.notify()
			return
		}
	case outcomeFailed:
		// A failure closes an open gate; while closed only the probe's
		// failures count, so that requests that were already in flight
		// when the backend started failing do not inflate the delay.
		if g.open || t.probe {
			g.open = false
			g.delay = g.policy.delay(g.attempt, retryAfter)
			g.attempt++
			g.until = time.Now().Add(g.delay)
			g.notify()
			return
		}
	}
	if t.probe {
		g.notify() // the next probe may go
	}
}

// failing reports whether the gate is closed (the backend is failing or
// has not answered yet since the start).
func (g *gate) failing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.open
}
