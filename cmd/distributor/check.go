package main

import (
	"errors"
	"flag"
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

// checkConfig validates configuration files as the distributor would load
// them (every section a distributor reads, and the rules compiled). Invalid
// files exit with code 2 (bad configuration), like the server would.
func checkConfig(args []string, stdout io.Writer) error {
	files, err := subcommandFiles(cmdCheckConfig, "Validate promgov configuration files as the distributor loads them, rules included.", args, stdout)
	if err != nil {
		return err
	}
	var failed []string
	for _, f := range files {
		n, err := checkOne(f)
		if err != nil {
			fmt.Fprintf(stdout, "FAILED %s: %v\n", f, err)
			failed = append(failed, f)
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS %s: valid, %d rules\n", f, n)
	}
	if len(failed) > 0 {
		return &config.UsageError{Err: fmt.Errorf("%d of %d configuration files are invalid: %v", len(failed), len(files), failed)}
	}
	return nil
}

// checkOne validates one file and returns its number of rules.
func checkOne(file string) (int, error) {
	cfg, err := config.Parse(config.RoleDistributor, []string{"--config.file=" + file}, io.Discard)
	if err != nil {
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return 0, ue.Err
		}
		return 0, err
	}
	eng, err := rules.Compile(cfg.Rules, nil)
	if err != nil {
		return 0, err
	}
	return eng.Len(), nil
}

// testRules runs rule unit test files (like promtool test rules). A failing
// test exits with code 1, an invalid test file with code 2.
func testRules(args []string, stdout io.Writer) error {
	files, err := subcommandFiles(cmdTestRules, "Run rule unit tests written in YAML (see docs/rules.md).", args, stdout)
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

// subcommandFiles parses a subcommand's arguments: one or more files.
func subcommandFiles(name, about string, args []string, out io.Writer) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: distributor %s FILE...\n\n%s\n", name, about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &config.UsageError{Err: err}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, &config.UsageError{Err: fmt.Errorf("%s: give at least one file", name)}
	}
	return fs.Args(), nil
}
