package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/promgov/promgov/pkg/plugin/abi"
)

// initTimeout bounds starting an instance: at Load the first one, its init
// and the self-test; later each start for concurrency or to replace a
// failed instance. Ten batch timeouts, at least a second (starting a Go
// plugin takes a few milliseconds, far more on a loaded machine).
func initTimeout(timeout time.Duration) time.Duration { return max(10*timeout, time.Second) }

// Plugin is a loaded, self-tested plugin. Its methods are safe for
// concurrent use (see the package comment).
type Plugin struct {
	name     string
	cfg      Config
	logger   *slog.Logger
	metrics  pluginMetrics
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	maxMem   uint64  // bytes
	loader   *Loader // released at Close

	// The pool: idle holds the started instances no Eval is using, free
	// one token per instance not started (or discarded after a failure);
	// together they hold MaxInstances entries when no Eval runs. Eval
	// prefers an idle instance to a start; Close takes every entry.
	idle      chan *instance
	free      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// instance is one started module with its reusable buffers. It is used by
// one goroutine at a time (it is in a slot or with one Eval).
type instance struct {
	mod      api.Module
	mem      api.Memory
	alloc    api.Function
	evaluate api.Function
	stderr   *headWriter
	stack    []uint64
	buf      []byte
	inPtr    uint32 // the last buffer promgov_alloc returned
	inCap    uint32 // and its size
	sb       labels.ScratchBuilder
}

// Load reads, compiles, checks, starts and self-tests the plugin name
// configured by cfg, compiling the module for this plugin alone (a Loader
// shares compiled modules between the plugins it loads). m may be nil;
// logger nil logs nothing. Every error is an *Error naming the plugin and
// the cause.
func Load(ctx context.Context, name string, cfg Config, m *Metrics, logger *slog.Logger) (*Plugin, error) {
	l := NewLoader(m, logger)
	// The plugin's Close releases the compiled module: closing the Loader
	// now only refuses further loads.
	defer l.Close(context.WithoutCancel(ctx))
	return l.Load(ctx, name, cfg)
}

// load loads a plugin whose compiled code goes into, or comes from, cache.
func load(ctx context.Context, name string, cfg Config, m *Metrics, logger *slog.Logger, cache wazero.CompilationCache) (_ *Plugin, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("plugin %q: %w", name, err)
	}
	cfg = cfg.withDefaults()
	fail := func(kind Kind, err error) *Error { return &Error{Plugin: name, Kind: kind, Err: err} }

	code, err := ReadModule(ctx, cfg)
	if err != nil {
		return nil, fail(KindInvalidModule, err)
	}
	// One runtime per plugin: its memory limit applies when CompileModule
	// decodes the module, which it does even when cache has the compiled
	// code, so plugins sharing a module keep their own limits.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.MaxMemoryPages).
		WithCloseOnContextDone(true).
		WithCompilationCache(cache))
	var compiled wazero.CompiledModule
	defer func() {
		if err != nil {
			closeRuntime(context.WithoutCancel(ctx), rt, compiled)
		}
	}()
	compiled, err = rt.CompileModule(ctx, code)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "over limit") {
			hint = "; raise max_memory_pages"
		}
		return nil, fail(KindInvalidModule, fmt.Errorf("%s does not compile: %w%s", cfg.Module, err, hint))
	}
	if err := checkImportsExports(compiled); err != nil {
		return nil, fail(KindInvalidModule, fmt.Errorf("%s: %w", cfg.Module, err))
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fail(KindInvalidModule, fmt.Errorf("wasi: %w", err))
	}
	n := cfg.MaxInstances
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Plugin{
		name:     name,
		cfg:      cfg,
		logger:   logger.With("plugin", name),
		metrics:  m.forPlugin(name),
		runtime:  rt,
		compiled: compiled,
		// The sandbox: no arguments, environment, file system or network;
		// wazero's default clocks and random source are deterministic
		// fakes. _initialize runs a reactor's runtime and package init.
		modCfg: wazero.NewModuleConfig().WithName("").
			WithStartFunctions("_initialize").
			WithStdout(io.Discard),
		maxMem: uint64(cfg.MaxMemoryPages) * 65536,
		idle:   make(chan *instance, n),
		free:   make(chan struct{}, n),
		done:   make(chan struct{}),
	}

	initCtx, cancel := context.WithTimeout(ctx, initTimeout(time.Duration(cfg.Timeout)))
	defer cancel()
	inst, err := p.instantiate(initCtx)
	if err != nil {
		return nil, err
	}
	if err := p.checkVersion(initCtx, inst); err != nil {
		return nil, err
	}
	if err := p.configure(initCtx, inst); err != nil {
		return nil, err
	}
	if err := p.selfTest(initCtx, inst); err != nil {
		return nil, err
	}
	p.idle <- inst
	for i := 1; i < n; i++ {
		p.free <- struct{}{}
	}
	return p, nil
}

// The ABI's exports and their signatures.
var i32, i64 = api.ValueTypeI32, api.ValueTypeI64

func checkImportsExports(c wazero.CompiledModule) error {
	for _, f := range c.ImportedFunctions() {
		if mod, fn, _ := f.Import(); mod != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("imports %s.%s; a plugin may import only %s", mod, fn, wasi_snapshot_preview1.ModuleName)
		}
	}
	if len(c.ImportedMemories()) > 0 {
		return errors.New("imports a memory; a plugin must define and export its own")
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		return errors.New(`exports no memory named "memory"`)
	}
	exports := c.ExportedFunctions()
	for _, want := range []struct {
		name          string
		params, grade []api.ValueType
	}{
		{abi.ExportVersion, nil, []api.ValueType{i32}},
		{abi.ExportAlloc, []api.ValueType{i32}, []api.ValueType{i32}},
		{abi.ExportInit, []api.ValueType{i32, i32}, []api.ValueType{i64}},
		{abi.ExportEvaluate, []api.ValueType{i32, i32}, []api.ValueType{i64}},
	} {
		f, ok := exports[want.name]
		if !ok {
			return fmt.Errorf("exports no %s; is it built with promgov's plugin SDK (docs/plugins.md)?", want.name)
		}
		if !sameTypes(f.ParamTypes(), want.params) || !sameTypes(f.ResultTypes(), want.grade) {
			return fmt.Errorf("export %s has signature %s, want %s", want.name,
				signature(f.ParamTypes(), f.ResultTypes()), signature(want.params, want.grade))
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool { return bytes.Equal(a, b) }

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) []string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return s
	}
	return fmt.Sprintf("%v -> %v", names(params), names(results))
}

// instantiate starts an instance (the module's _initialize included).
func (p *Plugin) instantiate(ctx context.Context) (*instance, error) {
	stderr := &headWriter{}
	mod, err := p.runtime.InstantiateModule(ctx, p.compiled, p.modCfg.WithStderr(stderr))
	if err != nil {
		// Starting runs the module's _initialize within ctx: when ctx ran
		// out (a batch's deadline), that is a timeout or a cancel, not a
		// module that cannot start.
		kind := KindInit
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			kind = KindTimeout
		case ctx.Err() != nil:
			kind = KindCanceled
		}
		return nil, &Error{Plugin: p.name, Kind: kind, Err: fmt.Errorf("start an instance: %w", err), Stderr: stderr.String()}
	}
	p.metrics.started()
	return &instance{
		mod:      mod,
		mem:      mod.Memory(),
		alloc:    mod.ExportedFunction(abi.ExportAlloc),
		evaluate: mod.ExportedFunction(abi.ExportEvaluate),
		stderr:   stderr,
		stack:    make([]uint64, 2),
	}, nil
}

func (p *Plugin) checkVersion(ctx context.Context, inst *instance) error {
	res, err := inst.mod.ExportedFunction(abi.ExportVersion).Call(ctx)
	if err != nil {
		return p.failure(ctx, inst, KindInit, fmt.Errorf("%s: %w", abi.ExportVersion, err))
	}
	if v := uint32(res[0]); v != abi.Version {
		inst.close()
		return &Error{Plugin: p.name, Kind: KindABIVersion, Err: fmt.Errorf(
			"the module speaks ABI version %d, this promgov speaks %d; rebuild it with this release's plugin SDK", v, abi.Version)}
	}
	return nil
}

// configure passes the configuration to the instance's init.
func (p *Plugin) configure(ctx context.Context, inst *instance) error {
	ptr, err := inst.write(ctx, []byte(p.cfg.Config))
	if err != nil {
		return p.failure(ctx, inst, KindInit, err)
	}
	res, err := inst.mod.ExportedFunction(abi.ExportInit).Call(ctx, uint64(ptr), uint64(len(p.cfg.Config)))
	if err != nil {
		return p.failure(ctx, inst, KindInit, fmt.Errorf("%s: %w", abi.ExportInit, err))
	}
	if res[0] == 0 {
		return nil
	}
	mptr, mlen := abi.Unpack(res[0])
	msg, ok := inst.mem.Read(mptr, min(mlen, 4096))
	inst.close()
	if !ok {
		return &Error{Plugin: p.name, Kind: KindInit, Err: errors.New("init failed, and its error message is outside its memory")}
	}
	return &Error{Plugin: p.name, Kind: KindInit, Err: fmt.Errorf("init: %s", bytes.ToValidUTF8(msg, []byte("?")))}
}

// selfTest evaluates one synthetic series, which must give a well-formed
// verdict.
func (p *Plugin) selfTest(ctx context.Context, inst *instance) error {
	in := []Input{{
		Tenant: "promgov-self-test",
		Labels: labels.FromStrings("__name__", "promgov_plugin_self_test", "job", "promgov"),
		Type:   model.MetricTypeCounter,
	}}
	if _, err := p.call(ctx, inst, in, nil); err != nil {
		e := &Error{Plugin: p.name, Kind: KindSelfTest, Err: err}
		var pe *Error
		if errors.As(err, &pe) {
			e.Err, e.Stderr = fmt.Errorf("%s: %w", pe.Kind, pe.Err), pe.Stderr
		}
		return e
	}
	return nil
}

// write copies data into the guest's input buffer and returns its
// address. The ABI keeps the buffer promgov_alloc(n) returned valid, with
// at least n bytes, until the next promgov_alloc: the host calls it only
// when data outgrows the last one (a call costs microseconds).
func (inst *instance) write(ctx context.Context, data []byte) (uint32, error) {
	if inst.inCap > 0 && uint32(len(data)) <= inst.inCap {
		if inst.mem.Write(inst.inPtr, data) {
			return inst.inPtr, nil
		}
	}
	inst.stack[0] = uint64(len(data))
	if err := inst.alloc.CallWithStack(ctx, inst.stack); err != nil {
		return 0, fmt.Errorf("%s: %w", abi.ExportAlloc, err)
	}
	ptr := uint32(inst.stack[0])
	if !inst.mem.Write(ptr, data) {
		return 0, &Error{Kind: KindBadOutput, Err: fmt.Errorf("%s(%d) returned %#x, outside its %d-byte memory",
			abi.ExportAlloc, len(data), ptr, inst.mem.Size())}
	}
	inst.inPtr, inst.inCap = ptr, uint32(len(data))
	return ptr, nil
}

// closeRuntime closes a plugin's runtime (its instances and the WASI host
// module) and then its compiled module, which releases the compiled code
// from the shared cache once no other plugin uses it (compiled may be nil).
func closeRuntime(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) error {
	err := rt.Close(ctx)
	if compiled != nil {
		err = errors.Join(err, compiled.Close(ctx))
	}
	return err
}

func (inst *instance) close() { _ = inst.mod.Close(context.Background()) }

// failure turns an error of a call into an *Error of the right kind and
// closes the instance. kind is the kind of a trap (KindTrap, or KindInit
// while starting).
func (p *Plugin) failure(ctx context.Context, inst *instance, kind Kind, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) && pe.Plugin == "" {
		kind, err = pe.Kind, pe.Err // from write or decode
	} else {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			kind = KindTimeout
		case ctx.Err() != nil:
			kind = KindCanceled
		case inst.mem != nil && uint64(inst.mem.Size()) >= p.maxMem || bytes.Contains(inst.stderr.buf, []byte("out of memory")):
			kind = KindMemory
		}
		// wazero appends the wasm stack trace on further lines: the
		// first says what happened, the rest would flood the log.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		err = errors.New(msg)
	}
	e := &Error{Plugin: p.name, Kind: kind, Err: err, Stderr: inst.stderr.String()}
	inst.close()
	return e
}

// headWriter keeps the first bytes written to it (a Go panic's message
// comes first).
type headWriter struct{ buf []byte }

const headMax = 1024

func (w *headWriter) Write(b []byte) (int, error) {
	if room := headMax - len(w.buf); room > 0 {
		w.buf = append(w.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

func (w *headWriter) reset() { w.buf = w.buf[:0] }

// String is the first line written, or "".
func (w *headWriter) String() string {
	s := bytes.TrimSpace(w.buf)
	if i := bytes.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return string(bytes.ToValidUTF8(s, []byte("?")))
}
