package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// placeholderBackendURL stands in for a backend.url the file leaves to
// the ingesters' --backend.url, so that the other ingester sections are
// still checked.
const placeholderBackendURL = "http://backend.url.is.given.by.flag/api/v1/write"

// NoteNoBackendURL is CheckIngesterFile's note for a file without
// backend.url.
const NoteNoBackendURL = "backend.url is not set: start every ingester with --backend.url"

// CheckIngesterFile validates a configuration file as an ingester loads
// it: the common sections and every ingester section, the names of the
// distributor's sections (not their content: distributor check-config
// checks them). Flags are not considered, except that a backend.url
// missing from the file is a note (ingesters are often given
// --backend.url), not an error.
func CheckIngesterFile(path string) (notes []string, err error) {
	// backend.url is the one ingester setting without a default; a file
	// that leaves it to --backend.url is checked with a stand-in.
	args := []string{"--config.file=" + path}
	if fileBackendURL(path) == "" {
		args = append(args, "--backend.url="+placeholderBackendURL)
		notes = append(notes, NoteNoBackendURL)
	}
	if _, err := ParseIngester(args, io.Discard); err != nil {
		return nil, fmt.Errorf("as an ingester loads it: %w", UnwrapUsage(err))
	}
	return notes, nil
}

// CheckFunc checks one configuration file: what it found (printed after
// SUCCESS) and notes, or what is wrong.
type CheckFunc func(path string) (summary string, notes []string, err error)

// CheckConfigCommand is the check-config subcommand (bin names the binary
// in its usage text, about says what it checks): it checks every file
// with check and prints one line per file. Invalid files make a
// UsageError (exit code 2), like the server's own start would.
func CheckConfigCommand(bin, about string, check CheckFunc, args []string, stdout io.Writer) error {
	files, err := SubcommandFiles(bin, "check-config", about, args, stdout)
	if err != nil {
		return err
	}
	var failed []string
	for _, f := range files {
		summary, notes, err := check(f)
		if err != nil {
			fmt.Fprintf(stdout, "FAILED %s: %v\n", f, err)
			failed = append(failed, f)
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS %s: %s\n", f, summary)
		for _, n := range notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
	}
	if len(failed) > 0 {
		return &UsageError{Err: fmt.Errorf("%d of %d configuration files are invalid: %v", len(failed), len(files), failed)}
	}
	return nil
}

// IngesterCheckConfigCommand is the ingester's check-config: every file as
// an ingester loads it (CheckIngesterFile).
func IngesterCheckConfigCommand(args []string, stdout io.Writer) error {
	return CheckConfigCommand("ingester",
		"Validate promgov configuration files as an ingester loads them: the common and ingester sections, limits compiled. The distributor's sections are checked by name only: run distributor check-config for them.",
		func(path string) (string, []string, error) {
			notes, err := CheckIngesterFile(path)
			return "valid for ingesters (distributor sections: run distributor check-config)", notes, err
		}, args, stdout)
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
// cannot be read, which the parse reports).
func fileBackendURL(path string) string {
	var cfg IngesterConfig
	if err := loadFile(path, &cfg); err != nil {
		return ""
	}
	return cfg.Backend.URL
}

// UnwrapUsage returns the configuration error inside a UsageError.
func UnwrapUsage(err error) error {
	var ue *UsageError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
