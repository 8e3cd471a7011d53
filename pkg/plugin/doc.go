// Package plugin runs promgov governance plugins: WebAssembly modules that
// see a batch of series (tenant, labels, metric type) and return a verdict
// per series (keep, drop, rewrite or tag, with a reason). Modules run in
// github.com/tetratelabs/wazero, a pure-Go runtime, inside a sandbox: no
// file system, network, environment or arguments, a fake clock, a memory
// limit and a deadline per batch.
//
// Load reads and compiles a module once, checks that it speaks this host's
// ABI version (package abi; docs/plugins.md is the specification), starts an
// instance, passes it the plugin configuration and runs a self-test; any
// failure is an *Error naming the plugin and the cause. Eval encodes a batch
// into the instance's memory, calls its evaluate export and decodes the
// verdicts strictly. A trap (a panic, unreachable, an exit), a timeout, the
// memory limit or output that breaks the ABI is an *Error of the matching
// Kind: the batch gets the configuration's on_error verdict, the error is
// counted and logged once per batch, and the instance is discarded; the next
// batch gets a fresh instance of the same compiled module. A plugin can
// therefore neither crash nor stall the process: at worst each of its
// batches costs the timeout and takes the on_error verdict.
//
// Compiling is most of a load's cost. A Loader shares compiled modules
// between the plugins it loads (a wazero compilation cache): a module whose
// bytes it compiled for a plugin still open is not compiled again. Each
// plugin keeps its own runtime, memory limit and instances. The package
// function Load compiles for one plugin alone.
//
// Concurrency: a wasm instance runs one call at a time, so a Plugin keeps a
// bounded pool of instances (max_instances, default GOMAXPROCS), started
// lazily, one per concurrent Eval. Eval is safe for concurrent use; a caller
// beyond the pool waits for a free instance within its batch deadline.
// Close waits (up to its context) for Evals in flight and releases the
// runtime; Eval after Close returns an *Error of KindClosed.
package plugin
