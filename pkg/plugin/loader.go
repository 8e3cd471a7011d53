package plugin

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/tetratelabs/wazero"
)

// Loader loads plugins that share compiled code. Compiling a module is most
// of the cost of Load (about a second for a Go plugin, more under the race
// detector); a Loader keeps one wazero compilation cache for every plugin it
// loads, so a module whose bytes it compiled for a plugin that is still open
// is not compiled again: a second rule running the same module, or a reload
// that changes a plugin's configuration but not its module, costs the
// start-up and self-test only. The compiled code of a module is released
// when the last open plugin loaded from it closes (a compiled Go plugin
// holds tens of MiB, so modules no rule uses are not kept).
//
// Only the compiled code is shared: each plugin keeps its own runtime, its
// own memory limit (max_memory_pages applies when the module is decoded,
// which every Load does, not to the compiled code) and its own instances;
// closing one plugin leaves the others running.
//
// A Loader is safe for concurrent use, but two Loads of the same module at
// once may both compile it (wazero checks the cache before compiling):
// callers that load many plugins load them one at a time, as a reload does.
type Loader struct {
	metrics *Metrics
	logger  *slog.Logger
	cache   wazero.CompilationCache

	mu      sync.Mutex
	open    int  // plugins loaded (or loading) and not closed
	closing bool // Close was called
	closed  bool // the cache is closed
}

// errLoaderClosed is the cause of the KindClosed error of Load after the
// Loader's Close.
var errLoaderClosed = errors.New("the plugin loader is closed; load plugins before closing it, or use a new one")

// NewLoader returns a Loader whose plugins count into m (which may be nil)
// and log to logger (nil logs nothing). Close it once its plugins are no
// longer needed.
func NewLoader(m *Metrics, logger *slog.Logger) *Loader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Loader{metrics: m, logger: logger, cache: wazero.NewCompilationCache()}
}

// Load reads, compiles (unless a plugin of this Loader that is still open
// has the same module bytes), checks, starts and self-tests the plugin name
// configured by cfg. Every error is an *Error naming the plugin and the
// cause; after Close, it is of KindClosed.
func (l *Loader) Load(ctx context.Context, name string, cfg Config) (*Plugin, error) {
	if !l.acquire() {
		err := &Error{Plugin: name, Kind: KindClosed, Err: errLoaderClosed}
		l.metrics.loadFailed(name, err.Kind)
		return nil, err
	}
	p, err := load(ctx, name, cfg, l.metrics, l.logger, l.cache)
	if err != nil {
		_ = l.release(context.WithoutCancel(ctx))
		var pe *Error
		if errors.As(err, &pe) {
			l.metrics.loadFailed(name, pe.Kind)
		}
		return nil, err
	}
	p.loader = l
	return p, nil
}

// Close stops the Loader: later Loads fail with KindClosed. The shared
// compiled code is released now if every plugin the Loader loaded is
// closed, or else when the last of them closes, so plugins still open keep
// working; closing the plugins first is the usual order. Close is
// idempotent.
func (l *Loader) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closing = true
	done := l.open == 0 && !l.closed
	l.closed = l.closed || done
	l.mu.Unlock()
	if done {
		return l.cache.Close(ctx)
	}
	return nil
}

// acquire counts a plugin being loaded, unless the Loader is closing.
func (l *Loader) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.open++
	return true
}

// release uncounts a plugin that closed (or failed to load) and closes the
// cache if it was the last one of a closing Loader.
func (l *Loader) release(ctx context.Context) error {
	l.mu.Lock()
	l.open--
	done := l.closing && l.open == 0 && !l.closed
	l.closed = l.closed || done
	l.mu.Unlock()
	if done {
		return l.cache.Close(ctx)
	}
	return nil
}
