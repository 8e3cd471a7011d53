package fanout

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEach(t *testing.T) {
	items := []int{1, 2, 3, 4, 5}
	out := make([]int, len(items))
	var calls atomic.Int32
	errs := Each(items, func(i, v int) error {
		calls.Add(1)
		out[i] = v * 10
		if v%2 == 0 {
			return fmt.Errorf("item %d", v)
		}
		return nil
	})
	require.Equal(t, int32(5), calls.Load())
	require.Equal(t, []int{10, 20, 30, 40, 50}, out)
	require.Len(t, errs, 2)
	require.ErrorContains(t, errors.Join(errs...), "item 2")
	require.ErrorContains(t, errors.Join(errs...), "item 4")

	require.Nil(t, Each(nil, func(int, int) error { return errors.New("never called") }))
}

// TestEachPassesPanicToCaller: a panicking call does not kill the process
// from its own goroutine; the other calls finish and the caller panics
// with the value and the stack, where a request edge recovers it.
func TestEachPassesPanicToCaller(t *testing.T) {
	var done atomic.Int32
	var got any
	func() {
		defer func() { got = recover() }()
		Each([]int{1, 2, 3}, func(_, v int) error {
			if v == 2 {
				panic(fmt.Sprintf("bug on item %d", v))
			}
			done.Add(1)
			return nil
		})
	}()
	require.Equal(t, int32(2), done.Load(), "the other calls ran to the end")
	p, ok := got.(*Panic)
	require.True(t, ok, "%T", got)
	require.ErrorContains(t, p, "bug on item 2")
	require.Contains(t, string(p.Stack), "TestEachPassesPanicToCaller")
}
