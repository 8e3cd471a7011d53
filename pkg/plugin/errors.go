package plugin

import "fmt"

// Kind classifies a plugin failure. The set is closed, so it is a bounded
// metric label.
type Kind string

// The kinds. The first four fail Load; the others fail one Eval.
const (
	// KindInvalidModule: the file is missing, not WebAssembly, does not
	// compile, imports something other than WASI or lacks an ABI export.
	KindInvalidModule Kind = "invalid_module"
	// KindABIVersion: the module speaks another ABI version.
	KindABIVersion Kind = "abi_version"
	// KindInit: starting an instance or its init failed (an error from the
	// plugin, a trap, the deadline or the memory limit during init).
	KindInit Kind = "init"
	// KindSelfTest: the load-time batch of one synthetic series failed.
	KindSelfTest Kind = "self_test"

	// KindTrap: the instance trapped (a panic, unreachable, an out of
	// bounds access, an exit).
	KindTrap Kind = "trap"
	// KindTimeout: the batch took longer than the timeout.
	KindTimeout Kind = "timeout"
	// KindMemory: the instance reached max_memory_pages.
	KindMemory Kind = "memory"
	// KindBadOutput: the verdicts break the ABI (wrong count, unknown
	// action, out-of-range buffer, invalid labels, trailing bytes).
	KindBadOutput Kind = "bad_output"
	// KindCanceled: the caller's context ended before the batch did.
	KindCanceled Kind = "canceled"
	// KindClosed: Eval after the plugin's Close, or Load after the
	// Loader's Close.
	KindClosed Kind = "closed"
)

// Kinds lists every Kind, for tests and for initialising metrics.
func Kinds() []Kind {
	return []Kind{KindInvalidModule, KindABIVersion, KindInit, KindSelfTest,
		KindTrap, KindTimeout, KindMemory, KindBadOutput, KindCanceled, KindClosed}
}

// Error is a plugin failure: which plugin, what kind, and the cause.
type Error struct {
	Plugin string
	Kind   Kind
	Err    error
	// Stderr is the start of what the instance wrote to stderr during the
	// failed call (a Go plugin's panic message), or "".
	Stderr string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("plugin %q: %s: %v", e.Plugin, e.Kind, e.Err)
	if e.Stderr != "" {
		s += fmt.Sprintf(" (stderr: %q)", e.Stderr)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
