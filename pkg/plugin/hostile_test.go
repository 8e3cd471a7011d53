package plugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

const (
	hostilePkg = "./testdata/hostile"
	rawABIPkg  = "./testdata/rawabi"
)

// foreignImport is a module importing env.f, hand-assembled: the header, a
// type section with one () -> () type and an import section.
var foreignImport = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" +
	"\x02\x09\x01\x03env\x01f\x00\x00")

func writeFile(t *testing.T, name string, data []byte) string {
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func someInputs(n int) []Input {
	in := make([]Input, n)
	for i := range in {
		in[i] = Input{Tenant: "t", Labels: labels.FromStrings("__name__", "up", "team", "core"), Type: model.MetricTypeGauge}
	}
	return in
}

// TestHostilePluginsRejectedAtLoad: a module that is not a usable plugin is
// rejected by Load with an *Error of the right kind naming the plugin and
// the cause, and counted.
func TestHostilePluginsRejectedAtLoad(t *testing.T) {
	cases := map[string]struct {
		module  func(t *testing.T) string
		config  string
		pages   uint32
		kind    Kind
		message string
	}{
		"missing file": {
			module: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.wasm") },
			kind:   KindInvalidModule, message: "no such file",
		},
		"not webassembly": {
			module: func(t *testing.T) string { return writeFile(t, "x.wasm", []byte("#!/bin/sh\necho hi\n")) },
			kind:   KindInvalidModule, message: "is not a WebAssembly module",
		},
		"truncated webassembly": {
			module: func(t *testing.T) string {
				return writeFile(t, "x.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01"))
			},
			kind: KindInvalidModule, message: "does not compile",
		},
		"empty module": {
			module: func(t *testing.T) string { return writeFile(t, "x.wasm", []byte("\x00asm\x01\x00\x00\x00")) },
			kind:   KindInvalidModule, message: `exports no memory named "memory"`,
		},
		"imports outside wasi": {
			module: func(t *testing.T) string { return writeFile(t, "x.wasm", foreignImport) },
			kind:   KindInvalidModule, message: "imports env.f; a plugin may import only wasi_snapshot_preview1",
		},
		"not a plugin (a Go reactor without the ABI)": {
			module: func(t *testing.T) string { return builder.Build(t, "./testdata/noabi") },
			kind:   KindInvalidModule, message: "exports no promgov_abi_version",
		},
		"memory limit below the module's minimum": {
			module: func(t *testing.T) string { return builder.Build(t, requireTeamPkg) },
			config: `{"teams":["core"]}`, pages: 8,
			kind: KindInvalidModule, message: "raise max_memory_pages",
		},
		"wrong abi version": {
			module: func(t *testing.T) string { return builder.Build(t, rawABIPkg, "-ldflags=-X=main.version=2") },
			kind:   KindABIVersion, message: "speaks ABI version 2, this promgov speaks 1",
		},
		"init returns an error": {
			module: func(t *testing.T) string { return builder.Build(t, hostilePkg) },
			config: "init-error", kind: KindInit, message: "init: the configuration is wrong on purpose",
		},
		"init panics": {
			module: func(t *testing.T) string { return builder.Build(t, hostilePkg) },
			config: "init-panic", kind: KindInit, message: "init panics on purpose",
		},
		"init loops forever": {
			module: func(t *testing.T) string { return builder.Build(t, hostilePkg) },
			config: "init-loop", kind: KindTimeout, message: "deadline exceeded",
		},
		"example rejects its configuration": {
			module: func(t *testing.T) string { return builder.Build(t, requireTeamPkg) },
			config: `{"teams":[]}`, kind: KindInit, message: "requireteam: teams is empty",
		},
		"self-test gets garbage": {
			module: func(t *testing.T) string { return builder.Build(t, rawABIPkg) },
			config: "garbage-load", kind: KindSelfTest, message: "bad_output",
		},
		"self-test traps": {
			module: func(t *testing.T) string { return builder.Build(t, hostilePkg) },
			config: "panic-always", kind: KindSelfTest, message: "trap",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			cfg := Config{Module: tc.module(t), Config: tc.config, MaxMemoryPages: tc.pages}
			p, err := Load(context.Background(), "hostile", cfg, m, nil)
			require.Nil(t, p)
			t.Log(err)
			var pe *Error
			require.ErrorAs(t, err, &pe, "%v", err)
			require.Equal(t, tc.kind, pe.Kind, "%v", err)
			require.Equal(t, "hostile", pe.Plugin)
			require.ErrorContains(t, err, `plugin "hostile"`)
			require.ErrorContains(t, err, tc.message)
			require.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("hostile", string(tc.kind))))
		})
	}
}

// TestHostilePluginsContainedAtEval: a plugin that passes its self-test and
// then misbehaves on a batch fails that batch with an *Error of the right
// kind, the batch gets the on_error verdict, the failure is counted, and
// the instance is replaced: a plugin whose fresh instances behave serves
// the next batch.
func TestHostilePluginsContainedAtEval(t *testing.T) {
	cases := map[string]struct {
		pkg      string
		config   string
		timeout  time.Duration
		pages    uint32
		onError  OnError
		kind     Kind
		message  string
		stderr   string
		recovers bool // the next batch, on a fresh instance, succeeds
	}{
		"infinite loop": {pkg: hostilePkg, config: "loop", timeout: 200 * time.Millisecond,
			kind: KindTimeout, message: "deadline exceeded"},
		"memory bomb": {pkg: hostilePkg, config: "bomb", pages: 128, timeout: 5 * time.Second,
			kind: KindMemory, stderr: "out of memory"},
		"panic": {pkg: hostilePkg, config: "panic", onError: OnErrorDrop,
			kind: KindTrap, stderr: "panic: evaluate panics on purpose"},
		"garbage output": {pkg: rawABIPkg, config: "garbage",
			kind: KindBadOutput, message: "verdicts for 3 series", recovers: true},
		"one verdict too many": {pkg: rawABIPkg, config: "count",
			kind: KindBadOutput, message: "4 verdicts for 3 series", recovers: true},
		"output outside memory": {pkg: rawABIPkg, config: "range", onError: OnErrorDrop,
			kind: KindBadOutput, message: "outside its", recovers: true},
		"unknown action": {pkg: rawABIPkg, config: "action",
			kind: KindBadOutput, message: "unknown action 9", recovers: true},
		"invalid utf-8": {pkg: rawABIPkg, config: "utf8",
			kind: KindBadOutput, message: "not valid UTF-8", recovers: true},
		"duplicate labels": {pkg: rawABIPkg, config: "dup",
			kind: KindBadOutput, message: `label "team" twice`, recovers: true},
		"keep with labels": {pkg: rawABIPkg, config: "keep-labels",
			kind: KindBadOutput, message: "keep with 1 labels", recovers: true},
		"empty label value": {pkg: rawABIPkg, config: "empty-value",
			kind: KindBadOutput, message: "empty value", recovers: true},
		"trailing bytes": {pkg: rawABIPkg, config: "trailing",
			kind: KindBadOutput, message: "1 trailing bytes", recovers: true},
		"huge count": {pkg: rawABIPkg, config: "huge-count",
			kind: KindBadOutput, message: "4294967295 verdicts for 3 series", recovers: true},
		"panic on one series only": {pkg: hostilePkg, config: "nth-panic",
			kind: KindTrap, stderr: "panic: boom", recovers: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			cfg := Config{Module: builder.Build(t, tc.pkg), Config: tc.config, OnError: tc.onError,
				Timeout: model.Duration(tc.timeout), MaxMemoryPages: tc.pages, MaxInstances: 1}
			p := loadT(t, "hostile", cfg, m)

			in := someInputs(3)
			if tc.config == "nth-panic" {
				in[1].Labels = labels.FromStrings("__name__", "boom")
			}
			out, err := p.Eval(context.Background(), in, nil)
			t.Log(err)
			var pe *Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.kind, pe.Kind, "%v", err)
			require.Equal(t, "hostile", pe.Plugin)
			require.ErrorContains(t, err, tc.message)
			require.Contains(t, pe.Stderr, tc.stderr)
			want := Keep
			if tc.onError == OnErrorDrop {
				want = Drop
			}
			require.Len(t, out, len(in))
			for _, v := range out {
				require.Equal(t, want, v.Action)
				require.Contains(t, v.Reason, "plugin hostile failed ("+string(tc.kind)+")")
			}
			require.Equal(t, 1.0, testutil.ToFloat64(m.errors.WithLabelValues("hostile", string(tc.kind))))
			require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("hostile", "error")))
			require.Equal(t, 1.0, testutil.ToFloat64(m.instances.WithLabelValues("hostile")))

			// The next batch runs on a fresh instance of the same module.
			out, err = p.Eval(context.Background(), someInputs(2), out)
			require.Equal(t, 2.0, testutil.ToFloat64(m.instances.WithLabelValues("hostile")))
			if !tc.recovers {
				require.ErrorAs(t, err, &pe)
				require.Equal(t, tc.kind, pe.Kind)
				return
			}
			require.NoError(t, err)
			require.Len(t, out, 2)
			require.Equal(t, Keep, out[0].Action)
			require.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("hostile", "ok")))
		})
	}
}

// TestPoolPrefersIdleInstance: a plugin called by one goroutine at a time
// runs on the instance Load started, however large its pool, so no batch
// pays for a start it does not need.
func TestPoolPrefersIdleInstance(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	p := loadT(t, "good", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`, MaxInstances: 4}, m)
	for range 20 {
		_, err := p.Eval(context.Background(), someInputs(3), nil)
		require.NoError(t, err)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.instances.WithLabelValues("good")))
}

// TestHostilePluginDoesNotStallOthers: while a plugin loops forever on
// every batch, another plugin in the same process keeps answering, and the
// looping plugin's batches each end at its timeout.
func TestHostilePluginDoesNotStallOthers(t *testing.T) {
	loop := loadT(t, "loop", Config{Module: builder.Build(t, hostilePkg), Config: "loop",
		Timeout: model.Duration(100 * time.Millisecond), MaxInstances: 2}, nil)
	good := loadT(t, "good", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`}, nil)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			for range 2 {
				start := time.Now()
				_, err := loop.Eval(context.Background(), someInputs(1), nil)
				var pe *Error
				if !errors.As(err, &pe) || pe.Kind != KindTimeout {
					errs <- err
				}
				if took := time.Since(start); took > 5*time.Second {
					errs <- errors.New("a looping batch took " + took.String())
				}
			}
		})
	}
	for range 50 {
		out, err := good.Eval(context.Background(), someInputs(10), nil)
		require.NoError(t, err)
		require.Len(t, out, 10)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
