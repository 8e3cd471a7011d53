package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

var (
	helmBin    string // PROMGOV_HELM
	binDir     string // distributor, ingester and reloader built for the tests
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	helmBin = os.Getenv("PROMGOV_HELM")
	if helmBin == "" {
		skipReason = "PROMGOV_HELM is not set: run `make test`, which builds helm and sets it"
	} else if _, err := os.Stat(helmBin); err != nil {
		skipReason = fmt.Sprintf("PROMGOV_HELM=%s: %v", helmBin, err)
	}
	if skipReason != "" && os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
		fmt.Fprintln(os.Stderr, "chart tests cannot run:", skipReason)
		return 1
	}
	if skipReason == "" {
		dir, err := os.MkdirTemp("", "promgov-chart-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/distributor", "./cmd/ingester", "./cmd/reloader")
		cmd.Dir = ".."
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build binaries:", err)
			return 1
		}
		binDir = dir
	}
	return m.Run()
}

func requireHelm(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
