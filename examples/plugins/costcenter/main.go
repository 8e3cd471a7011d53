// Command costcenter is an example promgov WebAssembly plugin: it derives a
// cost_center label from the namespace label through a configured mapping.
// A series whose namespace is mapped gets (or has overwritten) its
// cost_center label; a series whose namespace is not mapped, or that has no
// namespace, gets the configured default, or is left alone when there is
// none. It never drops.
//
// Build it with `make plugins` (bin/plugins/costcenter.wasm) or
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o costcenter.wasm ./examples/plugins/costcenter
//
// and configure it with JSON:
//
//	{"mapping": {"checkout": "cc-1001", "search": "cc-2002"}, "default": "cc-unassigned"}
//
// Only mapping is required. See docs/plugins.md.
package main

import "github.com/promgov/promgov/pkg/plugin/sdk"

func init() {
	var p policy
	sdk.Register(p.configure, p.evaluate)
}

// main is never called: the module is a WASI reactor.
func main() {}
