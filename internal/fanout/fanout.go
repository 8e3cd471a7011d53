// Package fanout runs one call per item concurrently and collects the
// errors: the one shape of concurrent fan-out promgov's cluster calls use
// (analytics, query statistics, peer sketch sync, handoff).
package fanout

import "sync"

// Each calls fn for every item, each in its own goroutine, waits for all of
// them and returns their errors (in no particular order; nil when none
// failed). fn gets the item's index, so it can store a result in a slice
// without locking; anything else it shares it must synchronise.
func Each[T any](items []T, fn func(i int, item T) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, it := range items {
		wg.Go(func() {
			if err := fn(i, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}
