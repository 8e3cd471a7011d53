// Package filewatch caches a value built from files (a parsed
// configuration, a certificate pair) and rebuilds it when one of the files
// changes, so a hot path pays for a read and a parse only after a change.
// A change is a different modification time, size or, for a file that is
// a symbolic link (Kubernetes secrets), target; it is looked for at most
// once per interval.
package filewatch

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LoadFunc builds the value and names the files it was built from; those
// are the files watched for the next change.
type LoadFunc[T any] func() (value T, files []string, err error)

// Cache holds the value of the last successful load. Safe for concurrent
// use; Get is lock-free between checks.
type Cache[T any] struct {
	load     LoadFunc[T]
	interval time.Duration
	now      func() time.Time

	next atomic.Int64 // unix nanoseconds of the next stat check
	cur  atomic.Pointer[entry[T]]

	mu sync.Mutex // serialises checks and loads
}

type entry[T any] struct {
	value T
	sig   string
	files []string
	err   error // the last load's error, when it failed after a success
}

// New loads the value once and returns the cache, or the load's error.
// interval is the least time between two checks of the files (a second is
// a good value: a rotation applies within it).
func New[T any](interval time.Duration, load LoadFunc[T]) (*Cache[T], error) {
	c := &Cache[T]{load: load, interval: interval, now: time.Now}
	v, files, err := load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(&entry[T]{value: v, files: files, sig: signature(files)})
	c.next.Store(c.now().Add(interval).UnixNano())
	return c, nil
}

// Get returns the current value. When the files changed since the last
// load and loading them fails, it returns the last good value and the
// error (retried at the next check), so the caller chooses whether a
// broken file stops it or the last good value serves on.
func (c *Cache[T]) Get() (T, error) {
	if c.now().UnixNano() >= c.next.Load() {
		c.check()
	}
	e := c.cur.Load()
	return e.value, e.err
}

func (c *Cache[T]) check() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.UnixNano() < c.next.Load() {
		return // another caller checked meanwhile
	}
	c.next.Store(now.Add(c.interval).UnixNano())
	old := c.cur.Load()
	sig := signature(old.files)
	if sig == old.sig && old.err == nil {
		return
	}
	v, files, err := c.load()
	if err != nil {
		// Keep the last good value and remember the failure; sig stays the
		// old one so the next check retries.
		c.cur.Store(&entry[T]{value: old.value, files: old.files, sig: old.sig, err: err})
		return
	}
	c.cur.Store(&entry[T]{value: v, files: files, sig: signature(files)})
}

// signature describes the files' current state; an unreadable file has
// one too, so its return is a change.
func signature(files []string) string {
	var s []byte
	for _, f := range files {
		if f == "" {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			s = fmt.Appendf(s, "%s:missing;", f)
			continue
		}
		target, _ := os.Readlink(f)
		s = fmt.Appendf(s, "%s:%d:%d:%s;", f, fi.ModTime().UnixNano(), fi.Size(), target)
	}
	return string(s)
}
