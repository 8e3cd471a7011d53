// Package fanout runs one call per item concurrently and collects the
// errors: the one shape of concurrent fan-out promgov's request paths use
// (analytics, query statistics, peer sketch sync, handoff, the UI's node
// status; the distributor's push sends and waits on the request's own
// goroutine instead).
package fanout

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Each calls fn for every item, each in its own goroutine (the last in the
// caller's), waits for all of them and returns their errors (in no
// particular order; nil when none failed). fn gets the item's index, so it can store a result in a slice
// without locking; anything else it shares it must synchronise.
//
// A panic in fn does not kill the process from a goroutine no request edge
// guards: Each waits for the other calls and then panics in the caller's
// goroutine with a *Panic, so the edge's recovery (internal/recovery)
// answers it like any other panic of the request.
func Each[T any](items []T, fn func(i int, item T) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		pan  *Panic
	)
	call := func(i int, it T) {
		defer func() {
			if v := recover(); v != nil {
				mu.Lock()
				if pan == nil {
					pan = &Panic{Value: v, Stack: debug.Stack()}
				}
				mu.Unlock()
			}
		}()
		if err := fn(i, it); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	// The last call runs in the caller's goroutine, which would only wait
	// otherwise: a fan-out to one item (one ingester) starts no goroutine.
	for i, it := range items {
		if i == len(items)-1 {
			call(i, it)
			break
		}
		wg.Go(func() { call(i, it) })
	}
	wg.Wait()
	if pan != nil {
		panic(pan)
	}
	return errs
}

// Panic is a panic of a call of Each, passed on to Each's caller with the
// stack of the goroutine that panicked.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) Error() string {
	return fmt.Sprintf("panic in a fan-out call: %v\n\n%s", p.Value, p.Stack)
}
