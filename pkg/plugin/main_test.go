package plugin

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/plugin/plugintest"
)

// builder builds the test plugins once per test binary.
var builder *plugintest.Builder

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "promgov-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builder = plugintest.NewBuilder(dir)
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
