package wal

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file system the WAL works on. Production code uses the
// operating system (pass nil to Open); tests wrap it to inject short writes,
// fsync errors and bit flips. The WAL calls FS methods from several
// goroutines at once, so implementations must be safe for concurrent use.
type FS interface {
	// OpenFile opens a file like os.OpenFile. Opening a directory with
	// os.O_RDONLY must work so that the WAL can fsync it.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove deletes a file like os.Remove.
	Remove(name string) error
	// Rename renames a file atomically like os.Rename.
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory like os.ReadDir; Info().Size() and
	// Info().ModTime() of the entries are used.
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates a directory and its parents like os.MkdirAll.
	MkdirAll(path string, perm os.FileMode) error
}

// File is an open file of an FS. The WAL writes a file from one goroutine
// only; separate handles are opened for reading, and ReadAt may be called
// while another handle of the same file is written.
type File interface {
	io.ReaderAt
	io.WriteCloser
	// WriteAt writes zeros ahead of the data (Config.Preallocate); data is
	// written with Write, at the file's offset, which WriteAt leaves alone.
	io.WriterAt
	// Sync flushes the file to stable storage like (*os.File).Sync.
	Sync() error
	// Datasync flushes the file's data, and the metadata needed to read it
	// back (its size, its blocks), to stable storage: fdatasync(2) on
	// Linux, which leaves out the inode's timestamps and so, when only they
	// changed, saves a write and a wait for it; Sync elsewhere. The WAL
	// makes its records durable with it.
	Datasync() error
	// Truncate changes the file size like (*os.File).Truncate.
	Truncate(size int64) error
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// osFile is a File of the operating system.
type osFile struct{ *os.File }

var _ File = osFile{}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// syncDir fsyncs a directory so that created, renamed and removed entries
// are durable.
func syncDir(fsys FS, dir string) error {
	d, err := fsys.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
