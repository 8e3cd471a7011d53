package wal

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// testConfig returns a config with small segments in a fresh directory.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Dir = filepath.Join(t.TempDir(), "wal")
	cfg.SegmentSize = minSegmentSize
	cfg.MaxSizeBytes = 0
	cfg.MaxAge = 0
	return cfg
}

// openTest opens a WAL with a fresh registry and closes it at cleanup.
func openTest(t testing.TB, cfg Config, fsys FS) (*WAL, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := Open(cfg, fsys, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, reg
}

// closeWAL closes w and requires success.
func closeWAL(t testing.TB, w *WAL) {
	t.Helper()
	require.NoError(t, w.Close(context.Background()))
}

// payload returns a distinct payload of n bytes for record i.
func payload(i, n int) []byte {
	b := []byte(fmt.Sprintf("record-%06d-", i))
	for len(b) < n {
		b = append(b, byte('a'+i%26))
	}
	return b[:max(n, len(fmt.Sprintf("record-%06d-", i)))]
}

// appendN appends n records of size bytes and returns their end positions.
func appendN(t testing.TB, w *WAL, from, n, size int) []Position {
	t.Helper()
	var ends []Position
	for i := from; i < from+n; i++ {
		end, err := w.Append(context.Background(), RecordBatch, payload(i, size))
		require.NoError(t, err)
		ends = append(ends, end)
	}
	return ends
}

// readN reads n records from r, failing after a generous timeout.
func readN(t testing.TB, r *Reader, n int) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []Record
	for len(recs) < n {
		rec, err := r.Next(ctx)
		require.NoError(t, err, "after %d of %d records", len(recs), n)
		recs = append(recs, rec)
	}
	return recs
}

// requireNoMore checks that r has nothing more to read right now.
func requireNoMore(t testing.TB, r *Reader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Next(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

// segmentFiles lists the segment indexes in dir.
func segmentFiles(t testing.TB, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var idx []int
	for _, e := range entries {
		if i, ok := parseSegmentName(e.Name()); ok {
			idx = append(idx, i)
		}
	}
	return idx
}

// faultFS wraps the OS file system and lets tests inject faults into
// segment writes and syncs.
type faultFS struct {
	OSFS
	mu         sync.Mutex
	onWrite    func(name string, p []byte) *writeFault // nil: pass through
	onSync     func(name string) error
	onTruncate func(name string, size int64) error
}

var _ FS = (*faultFS)(nil)

// writeFault makes a write persist only n bytes and return err.
type writeFault struct {
	n   int
	err error
}

// setWrite installs a write hook.
func (f *faultFS) setWrite(h func(name string, p []byte) *writeFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onWrite = h
}

// setSync installs a sync hook.
func (f *faultFS) setSync(h func(name string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onSync = h
}

// setTruncate installs a truncate hook.
func (f *faultFS) setTruncate(h func(name string, size int64) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTruncate = h
}

// OpenFile implements FS.
func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, name: filepath.Base(name)}, nil
}

// ReadDir implements FS.
func (f *faultFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.OSFS.ReadDir(name) }

// faultFile is a File of a faultFS.
type faultFile struct {
	File
	fs   *faultFS
	name string
}

// Write implements File, applying the write hook.
func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	h := f.fs.onWrite
	f.fs.mu.Unlock()
	if h != nil {
		if wf := h(f.name, p); wf != nil {
			if wf.n > 0 {
				// A short write really writes its prefix.
				if _, err := f.File.Write(p[:wf.n]); err != nil {
					return 0, err
				}
			}
			return wf.n, wf.err
		}
	}
	return f.File.Write(p)
}

// Sync implements File, applying the sync hook.
func (f *faultFile) Sync() error {
	if err := f.syncFault(); err != nil {
		return err
	}
	return f.File.Sync()
}

// Datasync implements File, applying the sync hook.
func (f *faultFile) Datasync() error {
	if err := f.syncFault(); err != nil {
		return err
	}
	return f.File.Datasync()
}

// syncFault returns the error the sync hook injects, if any.
func (f *faultFile) syncFault() error {
	f.fs.mu.Lock()
	h := f.fs.onSync
	f.fs.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(f.name)
}

// Truncate implements File, applying the truncate hook.
func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	h := f.fs.onTruncate
	f.fs.mu.Unlock()
	if h != nil {
		if err := h(f.name, size); err != nil {
			return err
		}
	}
	return f.File.Truncate(size)
}
