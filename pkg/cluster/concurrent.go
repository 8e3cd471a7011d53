package cluster

import "sync"

// eachConcurrently calls fn for every item, each in its own goroutine, waits
// for all of them and returns their errors (in no particular order). fn
// gets the item's index, so it can store a result without locking.
func eachConcurrently[T any](items []T, fn func(i int, item T) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
