package config

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/promgov/promgov/pkg/rules"
)

// CheckReport is what CheckFile found in a valid file.
type CheckReport struct {
	// Rules is the number of governance rules.
	Rules int
	// Notes are settings the file leaves to the command line.
	Notes []string
}

// placeholderBackendURL stands in for a backend.url the file leaves to
// the ingesters' --backend.url, so that the other ingester sections are
// still checked.
const placeholderBackendURL = "http://backend.url.is.given.by.flag/api/v1/write"

// CheckFile validates a configuration file as both binaries load it: every
// section a distributor reads (the rules compiled) and every section an
// ingester reads, so a file that passes starts both. Flags are not
// considered, except that a backend.url missing from the file is a note
// (ingesters are often given --backend.url), not an error.
func CheckFile(path string) (CheckReport, error) {
	var rep CheckReport
	dist, err := Parse(RoleDistributor, []string{"--config.file=" + path}, io.Discard)
	if err != nil {
		return rep, fmt.Errorf("as a distributor loads it: %w", unwrapUsage(err))
	}
	eng, err := rules.Compile(dist.Rules, nil)
	if err != nil {
		return rep, fmt.Errorf("as a distributor loads it: %w", err)
	}
	rep.Rules = eng.Len()

	// backend.url is the one ingester setting without a default; a file
	// that leaves it to --backend.url is checked with a stand-in.
	args := []string{"--config.file=" + path}
	if fileBackendURL(path) == "" {
		args = append(args, "--backend.url="+placeholderBackendURL)
		rep.Notes = append(rep.Notes, "backend.url is not set: start every ingester with --backend.url")
	}
	if _, err := Parse(RoleIngester, args, io.Discard); err != nil {
		return rep, fmt.Errorf("as an ingester loads it: %w", unwrapUsage(err))
	}
	return rep, nil
}

// CheckConfigCommand is the check-config subcommand of both binaries
// (bin names the binary in its usage text): it checks every file with
// CheckFile and prints one line per file. Invalid files make a UsageError
// (exit code 2), like the server's own start would.
func CheckConfigCommand(bin string, args []string, stdout io.Writer) error {
	files, err := SubcommandFiles(bin, "check-config",
		"Validate promgov configuration files as both binaries load them: every distributor and every ingester section, rules and limits compiled.",
		args, stdout)
	if err != nil {
		return err
	}
	var failed []string
	for _, f := range files {
		rep, err := CheckFile(f)
		if err != nil {
			fmt.Fprintf(stdout, "FAILED %s: %v\n", f, err)
			failed = append(failed, f)
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS %s: valid for distributors and ingesters, %d rules\n", f, rep.Rules)
		for _, n := range rep.Notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
	}
	if len(failed) > 0 {
		return &UsageError{Err: fmt.Errorf("%d of %d configuration files are invalid: %v", len(failed), len(files), failed)}
	}
	return nil
}

// SubcommandFiles parses a subcommand's arguments: one or more files.
// -h prints the usage and returns flag.ErrHelp; no file is a UsageError.
func SubcommandFiles(bin, name, about string, args []string, out io.Writer) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s %s FILE...\n\n%s\n", bin, name, about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Err: err}
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, &UsageError{Err: fmt.Errorf("%s: give at least one file", name)}
	}
	return fs.Args(), nil
}

// fileBackendURL is the backend.url the file sets ("" when it sets none or
// cannot be read, which the distributor's parse reported already).
func fileBackendURL(path string) string {
	var cfg Config
	if err := loadFile(path, &cfg); err != nil {
		return ""
	}
	return cfg.Backend.URL
}

// unwrapUsage returns the configuration error inside a UsageError.
func unwrapUsage(err error) error {
	var ue *UsageError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
