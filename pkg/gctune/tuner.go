package gctune

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Tuner resets the Go soft memory limit after every garbage collection
// (see the package comment). Create it with New and run it with Run; it
// holds no goroutine of its own (the runtime calls it after each
// collection). Safe for concurrent use.
type Tuner struct {
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	running bool  // between Run's start and its return
	prev    int64 // the limit before Run, restored when it returns
	samples []metrics.Sample
}

// The runtime metrics the limit is computed from.
const (
	metricLive     = "/gc/heap/live:bytes"
	metricTotal    = "/memory/classes/total:bytes"
	metricReleased = "/memory/classes/heap/released:bytes"
	metricFree     = "/memory/classes/heap/free:bytes"
	metricObjects  = "/memory/classes/heap/objects:bytes"
	metricUnused   = "/memory/classes/heap/unused:bytes"
)

// New returns a Tuner for cfg. It is off (Run only waits) when cfg.Tune
// is false or the environment sets GOGC or GOMEMLIMIT.
func New(cfg Config, logger *slog.Logger) *Tuner {
	if cfg.Tune {
		for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
			if _, ok := os.LookupEnv(env); ok {
				logger.Info("gc.tune is off: the environment sets "+env+", which governs the collector", "component", "gctune")
				cfg.Tune = false
			}
		}
	}
	t := &Tuner{cfg: cfg, logger: logger}
	for _, name := range []string{metricLive, metricTotal, metricReleased, metricFree, metricObjects, metricUnused} {
		t.samples = append(t.samples, metrics.Sample{Name: name})
	}
	return t
}

// sentinel is allocated once per collection cycle; its cleanup runs after
// the collection that finds it unreachable. It holds a pointer so that it
// is never a tiny allocation (whose cleanups may not run).
type sentinel struct {
	_ *byte
	_ [8]byte
}

// Run sets the limit and keeps it following the live heap until ctx is
// done, then restores the limit it found.
func (t *Tuner) Run(ctx context.Context) error {
	if !t.cfg.Tune {
		<-ctx.Done()
		return nil
	}
	t.mu.Lock()
	t.running = true
	t.prev = debug.SetMemoryLimit(-1)
	t.update()
	t.mu.Unlock()
	t.arm()

	<-ctx.Done()
	t.mu.Lock()
	t.running = false
	debug.SetMemoryLimit(t.prev)
	t.mu.Unlock()
	return nil
}

// arm asks the runtime to call afterGC once the next collection ran.
func (t *Tuner) arm() {
	runtime.AddCleanup(&sentinel{}, func(t *Tuner) { t.afterGC() }, t)
}

// afterGC runs on the runtime's cleanup goroutine after a collection.
func (t *Tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running {
		return // Run returned: stop re-arming
	}
	t.update()
	t.arm()
}

// update sets the limit from the last collection's live heap (t.mu held).
func (t *Tuner) update() {
	metrics.Read(t.samples)
	debug.SetMemoryLimit(Limit(t.cfg, Stats{
		Live:     t.samples[0].Value.Uint64(),
		Total:    t.samples[1].Value.Uint64(),
		Released: t.samples[2].Value.Uint64(),
		Free:     t.samples[3].Value.Uint64(),
		Objects:  t.samples[4].Value.Uint64(),
		Unused:   t.samples[5].Value.Uint64(),
	}))
}

// Stats are the runtime's figures a limit is computed from (runtime/metrics
// names in Tuner's constants).
type Stats struct {
	Live     uint64 // heap the last collection marked live
	Total    uint64 // all memory the runtime mapped
	Released uint64 // heap returned to the OS
	Free     uint64 // heap free and not released
	Objects  uint64 // heap occupied by objects, live or not yet swept
	Unused   uint64 // heap in spans but holding no object (fragmentation)
}

// Limit is the soft memory limit for s: the runtime's memory outside the
// heap (stacks, metadata, buffers), plus the live heap, plus the headroom.
// A Go memory limit counts Total−Released. The heap's own figures
// (objects, unused) are left out because right after a collection they
// still hold the garbage it has not swept yet; fragmentation comes out of
// the headroom.
func Limit(cfg Config, s Stats) int64 {
	other := int64(s.Total) - int64(s.Released) - int64(s.Free) - int64(s.Objects) - int64(s.Unused)
	live := int64(s.Live)
	headroom := max(cfg.MinHeadroomBytes, int64(cfg.HeadroomRatio*float64(live)))
	limit := max(other, 0) + live + headroom
	if limit <= 0 || limit > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return limit
}
