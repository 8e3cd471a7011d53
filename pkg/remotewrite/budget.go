package remotewrite

import (
	"errors"
	"sync/atomic"
)

// ErrOverloaded marks a request refused because the process already holds
// as much in flight as it may (Budget); the sender should retry later,
// here or elsewhere. The handler answers 503 with Retry-After.
var ErrOverloaded = errors.New("overloaded")

// Budget bounds the bytes that requests being read and decoded hold at
// once: the compressed body as it arrives and the decompressed payload
// before it is allocated. Safe for concurrent use.
type Budget interface {
	// Acquire reserves n bytes, or returns an error wrapping ErrOverloaded
	// (and reserves nothing) when that would pass the bound.
	Acquire(n int64) error
	// Release returns n bytes acquired before.
	Release(n int64)
}

// ByteBudget is a Budget of at most Max bytes; Max <= 0 is unbounded. The
// zero value is unbounded. Safe for concurrent use.
type ByteBudget struct {
	max  int64
	used atomic.Int64
	// over builds the error for a refused reservation.
	over func(used, n, max int64) error
}

// NewByteBudget returns a budget of max bytes whose refusals are built by
// over (which must wrap ErrOverloaded).
func NewByteBudget(max int64, over func(used, n, max int64) error) *ByteBudget {
	return &ByteBudget{max: max, over: over}
}

// Acquire implements Budget.
func (b *ByteBudget) Acquire(n int64) error {
	if b.max <= 0 {
		b.used.Add(n)
		return nil
	}
	if used := b.used.Add(n); used > b.max {
		b.used.Add(-n)
		return b.over(used-n, n, b.max)
	}
	return nil
}

// Release implements Budget.
func (b *ByteBudget) Release(n int64) { b.used.Add(-n) }

// Used is the number of bytes reserved now.
func (b *ByteBudget) Used() int64 { return b.used.Load() }
