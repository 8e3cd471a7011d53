// Package cli is the exit-code convention every promgov command shares: 0
// for success or -h, 2 for bad flags or configuration (a *UsageError), 1
// for anything else. It has no dependencies beyond the standard library, so
// small commands (loadgen, reloader) use it without linking the servers'
// packages.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// UsageError is a bad flag or configuration: the command exits with code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage wraps err as a *UsageError.
func Usage(err error) error { return &UsageError{Err: err} }

// ExitCode prints err to stderr after prefix and a colon and returns the
// process exit code: 0 for nil or flag.ErrHelp (nothing printed), 2 for a
// *UsageError, 1 otherwise.
func ExitCode(prefix string, err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, prefix+":", err)
		return 2
	default:
		fmt.Fprintln(stderr, prefix+":", err)
		return 1
	}
}
