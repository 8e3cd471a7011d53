// Command requireteam is an example promgov WebAssembly plugin: every series
// must carry a team label whose value is in a configured list. A series
// without one, or with a team not in the list, is dropped (action "drop",
// the default) or forwarded with a team_violation label saying which
// ("missing" or "unknown"; action "tag").
//
// Build it with `make plugins` (bin/plugins/requireteam.wasm) or
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o requireteam.wasm ./examples/plugins/requireteam
//
// and configure it with JSON:
//
//	{"teams": ["core", "payments"], "action": "drop", "label": "team", "tag_label": "team_violation"}
//
// Only teams is required. See docs/plugins.md.
package main

import "github.com/promgov/promgov/pkg/plugin/sdk"

func init() {
	var p policy
	sdk.Register(p.configure, p.evaluate)
}

// main is never called: the module is a WASI reactor.
func main() {}
