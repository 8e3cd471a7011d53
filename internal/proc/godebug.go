package proc

// godebugDefault is the GODEBUG default the binary was linked with, for
// the start log: `make build` passes the Makefile's GODEBUG_DEFAULT to the
// linker twice, as -X runtime.godebugDefault=..., which the Go runtime
// reads at start before the GODEBUG environment variable (which overrides
// it setting by setting), and as -X of this variable, because the
// runtime's copy cannot be read back (and -trimpath builds, such as the
// image's, do not record -ldflags in the build info). Empty for a binary
// built without it (go build, go test).
//
// The linker is the only way to give a runtime-only setting such as
// schedtrace a default: //go:debug lines and go.mod's godebug accept only
// the compatibility settings.
var godebugDefault string
