// Command promgovctl manages promgov's governance as code from a terminal
// or a CI pipeline, in the tradition of promtool and mimirtool:
//
//	promgovctl --version
//	promgovctl [--address URL] [--user NAME] config get
//	promgovctl config history
//	promgovctl config diff [--from N] [--to N]
//	promgovctl config apply [--if-match N] [--message M] [--shadow] FILE
//	promgovctl config promote [--message M] N
//	promgovctl config reject [--message REASON] N
//	promgovctl config rollback [--to N] [--message M]
//	promgovctl config preview [--tenant T] [--examples N] [-o table|json] FILE
//	promgovctl suggestions list
//	promgovctl suggestions propose [-o table|json] ID
//	promgovctl usage analyze [-o table|json] PATH...  (offline: what dashboards and rule files read)
//	promgovctl check config FILE...    (as distributor check-config)
//	promgovctl check rules FILE...     (rule unit tests, as distributor test-rules)
//	promgovctl jobs retrospective --selector S --start T [--end T] [--candidate FILE|--version N] [--rule NAME]
//	           [--execute [--delete-originals [--clean-tombstones]] [--confirm] | --openmetrics]
//	           [--max-series-per-second N] [--max-samples-per-second N]
//	           [--max-concurrency N] [--wait] [-o text|json]
//	promgovctl jobs list | get|cancel|resume|openmetrics ID   (docs/retrospective.md)
//
// Exit codes: 0 success; 1 the request or check failed (an invalid
// candidate, a failing test, not found); 2 bad usage; 3 conflict (a stale
// --if-match: fetch, rebase, retry); 4 the cluster or its store is
// unreachable (retry later).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/common/version"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/rules"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitConflict    = 3
	exitUnavailable = 4
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is bad usage (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("promgovctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("address", envOr("PROMGOV_ADDRESS", "http://127.0.0.1:9500"), "Base URL of a distributor (or $PROMGOV_ADDRESS).")
	user := fs.String("user", envOr("PROMGOV_USER", os.Getenv("USER")), "Author sent as X-Promgov-User (or $PROMGOV_USER).")
	timeout := fs.Duration("timeout", 30*time.Second, "Timeout of one request.")
	showVersion := fs.Bool("version", false, "Print version information and exit.")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: promgovctl [flags] config get|history|diff|apply|preview|promote|reject|rollback | suggestions list|propose | usage analyze PATH... | check config|rules FILE... | jobs retrospective|list|get|cancel|resume|openmetrics")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Print("promgovctl"))
		return exitOK
	}
	c := &client{base: *addr, user: *user, timeout: *timeout}
	err := dispatch(ctx, c, fs.Args(), stdout)
	return exitCode(err, stderr)
}

func dispatch(ctx context.Context, c *client, args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return &usageError{"want a command: config get|history|diff|apply|preview|promote|reject|rollback, suggestions list|propose, usage analyze, check config|rules, jobs retrospective|list|get|cancel|resume|openmetrics"}
	}
	cmd, rest := args[0]+" "+args[1], args[2:]
	switch cmd {
	case "config get":
		return c.configGet(ctx, stdout)
	case "config history":
		return c.history(ctx, stdout)
	case "config diff":
		fs := newFlags(cmd)
		from := fs.Uint64("from", 0, "Older version (default: the one before --to).")
		to := fs.Uint64("to", 0, "Newer version (default: the newest).")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		return c.diff(ctx, *from, *to, stdout)
	case "config apply":
		fs := newFlags(cmd)
		ifMatch := fs.String("if-match", "", "The version the change edits (default: the newest, read first).")
		msg := fs.String("message", "", "Why (stored with the version).")
		shadow := fs.Bool("shadow", false, "Store as a shadow candidate; make it active with promote.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		if fs.NArg() != 1 {
			return &usageError{"config apply: want one FILE (the governance YAML: rules, cardinality.limits, usage.drop_unused)"}
		}
		body, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return &usageError{err.Error()}
		}
		return c.apply(ctx, body, *ifMatch, *msg, *shadow, stdout)
	case "config preview":
		fs := newFlags(cmd)
		tenant := fs.String("tenant", "", "Preview one tenant's traffic (default: every tenant).")
		examples := fs.Int("examples", 5, "Affected series to show with their rule traces.")
		output := fs.String("o", "table", "Output: table or json.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		if fs.NArg() != 1 {
			return &usageError{"config preview: want one FILE (the candidate governance YAML)"}
		}
		if *output != "table" && *output != "json" {
			return &usageError{fmt.Sprintf("config preview: -o %q: use table or json", *output)}
		}
		body, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return &usageError{err.Error()}
		}
		return c.preview(ctx, body, *tenant, *examples, *output == "json", stdout)
	case "config promote":
		fs := newFlags(cmd)
		msg := fs.String("message", "", "Why.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		n, err := versionArg(fs.Args())
		if err != nil {
			return err
		}
		return c.post(ctx, fmt.Sprintf("/promgov/api/v1/config/versions/%d/promote", n), *msg, stdout)
	case "config reject":
		fs := newFlags(cmd)
		msg := fs.String("message", "", "Why it is rejected.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		n, err := versionArg(fs.Args())
		if err != nil {
			return err
		}
		return c.reject(ctx, n, *msg, stdout)
	case "config rollback":
		fs := newFlags(cmd)
		to := fs.Uint64("to", 0, "Version to make active again (default: the previous good one).")
		msg := fs.String("message", "", "Why.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		path := "/promgov/api/v1/config/rollback"
		if *to > 0 {
			path += "?to=" + strconv.FormatUint(*to, 10)
		}
		return c.post(ctx, path, *msg, stdout)
	case "suggestions list":
		return c.suggestions(ctx, stdout)
	case "suggestions propose":
		fs := newFlags(cmd)
		output := fs.String("o", "table", "Output: table or json.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		if fs.NArg() != 1 {
			return &usageError{"suggestions propose: want one suggestion ID (suggestions list shows them)"}
		}
		if *output != "table" && *output != "json" {
			return &usageError{fmt.Sprintf("suggestions propose: -o %q: use table or json", *output)}
		}
		return c.propose(ctx, fs.Arg(0), *output == "json", stdout)
	case "usage analyze":
		fs := newFlags(cmd)
		output := fs.String("o", "table", "Output: table or json.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		return analyzeUsage(fs.Args(), *output, stdout)
	case "check config":
		return distributorconfig.CheckConfigCommand("promgovctl check", append([]string{}, rest...), stdout)
	case "check rules":
		return checkRules(rest, stdout)
	}
	if args[0] == "jobs" {
		return c.jobs(ctx, args[1], rest, stdout)
	}
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func versionArg(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, &usageError{"want one version number"}
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n == 0 {
		return 0, &usageError{fmt.Sprintf("%q is not a version number", args[0])}
	}
	return n, nil
}

// checkRules runs rule unit test files.
func checkRules(files []string, stdout io.Writer) error {
	if len(files) == 0 {
		return &usageError{"check rules: want rule test FILEs"}
	}
	failed := 0
	for _, f := range files {
		rep, err := rules.RunTests(f)
		if err != nil {
			fmt.Fprintf(stdout, "INVALID %s: %v\n", f, err)
			failed++
			continue
		}
		fmt.Fprint(stdout, rep.String())
		if !rep.OK() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d rule test files failed", failed, len(files))
	}
	return nil
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "error:", err)
	var ue *usageError
	var cue *config.UsageError
	var he *httpError
	switch {
	case errors.As(err, &ue), errors.As(err, &cue):
		return exitUsage
	case errors.As(err, &he) && he.code == 409:
		return exitConflict
	case errors.As(err, &he) && he.code >= 500, errors.As(err, new(*netError)):
		return exitUnavailable
	}
	return exitFailed
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
