package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/rules"
)

// Subcommand names.
const (
	cmdCheckConfig = "check-config"
	cmdTestRules   = "test-rules"
)

// errChecksFailed is returned when a check or a rule unit test failed; the
// details were printed already. It exits with code 1.
var errChecksFailed = errors.New("checks failed")

// testRules runs rule unit test files (like promtool test rules). A failing
// test exits with code 1, an invalid test file with code 2.
func testRules(args []string, stdout io.Writer) error {
	files, err := config.SubcommandFiles("distributor", cmdTestRules, "Run rule unit tests written in YAML (see docs/rules.md).", args, stdout)
	if err != nil {
		return err
	}
	failed, invalid := 0, 0
	for _, f := range files {
		rep, err := rules.RunTests(f)
		if err != nil {
			fmt.Fprintf(stdout, "INVALID %s: %v\n", f, err)
			invalid++
			continue
		}
		fmt.Fprint(stdout, rep.String())
		if !rep.OK() {
			failed++
		}
	}
	switch {
	case invalid > 0:
		return &config.UsageError{Err: fmt.Errorf("%d of %d rule test files are invalid", invalid, len(files))}
	case failed > 0:
		return fmt.Errorf("%w: %d of %d rule test files have failing tests", errChecksFailed, failed, len(files))
	}
	return nil
}
