//go:build !linux

package wal

// Datasync implements File with Sync: fdatasync(2) is Linux's.
func (f osFile) Datasync() error { return f.Sync() }
