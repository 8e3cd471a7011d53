// Command hostile is a plugin built with the SDK that misbehaves as its
// configuration says, for the host's tests: "loop", "bomb" and "panic" in
// evaluate, "init-error", "init-panic" and "init-loop" in init, "nth-panic"
// panics on every batch whose first series is named boom; anything else
// keeps every series. The self-test at load passes for the evaluate
// behaviours unless the behaviour ends with "-always".
package main

import (
	"errors"
	"strings"

	"github.com/promgov/promgov/pkg/plugin/sdk"
)

var (
	mode string
	keep [][]byte
	spin int
)

func init() {
	sdk.Register(func(cfg []byte) error {
		mode = string(cfg)
		switch mode {
		case "init-error":
			return errors.New("the configuration is wrong on purpose")
		case "init-panic":
			panic("init panics on purpose")
		case "init-loop":
			for {
				spin++
			}
		}
		return nil
	}, func(s sdk.Series) sdk.Verdict {
		if s.Name() == "promgov_plugin_self_test" && !strings.HasSuffix(mode, "-always") {
			return sdk.Keep()
		}
		switch strings.TrimSuffix(mode, "-always") {
		case "loop":
			for {
				spin++
			}
		case "bomb":
			for {
				keep = append(keep, make([]byte, 1<<20))
			}
		case "panic":
			panic("evaluate panics on purpose")
		case "nth-panic":
			if s.Name() == "boom" {
				panic("boom")
			}
		}
		return sdk.Keep()
	})
}

func main() {}
