package wal

import (
	"errors"
	"os"
	"syscall"
)

// Datasync implements File with fdatasync(2).
func (f osFile) Datasync() error {
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			for {
				err = syscall.Fdatasync(int(fd))
				if !errors.Is(err, syscall.EINTR) {
					return
				}
			}
		})
		if cerr != nil {
			err = os.ErrClosed // Control fails only on a closed file
		}
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}
