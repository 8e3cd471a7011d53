package wal

import (
	"errors"
	"os"
	"syscall"
)

// Datasync implements File with fdatasync(2).
func (f osFile) Datasync() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.Fdatasync(int(fd))
		for errors.Is(serr, syscall.EINTR) {
			serr = syscall.Fdatasync(int(fd))
		}
	}); err != nil {
		serr = os.ErrClosed // Control fails only on a closed file
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
