// Package testfs gives tests a real small filesystem, so that a full disk
// is the kernel's ENOSPC and not a fake: tmpfs mounts that the test removes
// when it ends.
package testfs

import (
	"os"
	"os/exec"
	"testing"
)

// MountTmpfs mounts a tmpfs of size (mount's syntax, e.g. "1m") on a fresh
// directory and unmounts it when the test ends. A tmpfs mount needs root:
// the test is skipped, saying why, when not running as root or when the
// mount is refused (a container without CAP_SYS_ADMIN).
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a real full disk needs a tmpfs mount, which needs root: run as root (CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs for a real full disk: %v: %s", err, out)
	}
	t.Cleanup(func() {
		// Lazy: a process the test started may still hold a file open.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
