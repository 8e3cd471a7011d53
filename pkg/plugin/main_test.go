package plugin

import (
	"os"
	"testing"

	"github.com/promgov/promgov/pkg/plugin/plugintest"
)

// builder builds the test plugins once per test binary.
var builder *plugintest.Builder

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m, &builder)) }
