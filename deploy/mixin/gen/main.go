// Command gen writes the mixin's files (dashboards/*.json, alerts.yaml,
// rules.yaml) into the current directory from package mixin, and their
// copies into the Helm chart (mixin.ChartPath); run it with
// `go generate ./deploy/mixin`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/promgov/promgov/deploy/mixin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mixin gen:", err)
		os.Exit(1)
	}
}

func run() error {
	files, err := mixin.Files()
	if err != nil {
		return err
	}
	for path, b := range files {
		if err := write(path, b); err != nil {
			return err
		}
		if err := write(filepath.Join(mixin.ChartDir, mixin.ChartPath(path)), b); err != nil {
			return err
		}
	}
	return nil
}

func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
