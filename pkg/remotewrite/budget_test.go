package remotewrite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// TestReadWithinBudget: a request is refused with ErrOverloaded when the
// buffers it holds while read (the body's, growing as it arrives) or
// decoded (the payload's, before it is allocated) would pass the budget,
// and every byte it reserved is returned, whatever the outcome.
func TestReadWithinBudget(t *testing.T) {
	incompressible := make([]byte, 300<<10)
	_, _ = rand.Read(incompressible)
	for name, tc := range map[string]struct {
		max, heldElsewhere int64
		raw                []byte
		wantErr            error
	}{
		"fits":                             {max: 1 << 20, raw: make([]byte, 200<<10)},
		"body over the budget as it comes": {max: 100 << 10, raw: incompressible, wantErr: ErrOverloaded},
		"payload over the budget":          {max: 1 << 20, heldElsewhere: 900 << 10, raw: make([]byte, 200<<10), wantErr: ErrOverloaded},
		"bad snappy":                       {max: 1 << 20, raw: nil, wantErr: ErrBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(DefaultConfig(), testFlagPrefix)
			b := NewByteBudget(tc.max, func(used, n, max int64) error {
				return fmt.Errorf("%w: %d + %d over %d", ErrOverloaded, used, n, max)
			})
			require.NoError(t, b.Acquire(tc.heldElsewhere))
			body := snappy.Encode(nil, tc.raw)
			if tc.raw == nil {
				body = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
			}
			r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/x-protobuf")
			r.Header.Set("Content-Encoding", "snappy")
			got, err := d.ReadWithin(r, b)
			if tc.wantErr != nil {
				require.True(t, errors.Is(err, tc.wantErr), "%v", err)
				require.Equal(t, tc.heldElsewhere, b.Used(), "a refused request holds nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.raw, got.Payload)
			require.Equal(t, tc.heldElsewhere+int64(bufCap(len(tc.raw))), b.Used(), "the payload's buffer is held until Release")
			got.Release()
			require.Equal(t, tc.heldElsewhere, b.Used())
		})
	}
}

func TestBufClasses(t *testing.T) {
	for name, tc := range map[string]struct{ n, class, capacity int }{
		"empty":                {0, 0, 4 << 10},
		"one class exactly":    {4 << 10, 0, 4 << 10},
		"just over a class":    {4<<10 + 1, 1, 8 << 10},
		"60 MiB":               {60 << 20, 14, 64 << 20},
		"largest class":        {128 << 20, 15, 128 << 20},
		"over the largest one": {128<<20 + 1, -1, 128<<20 + 1},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.class, bufClass(tc.n))
			require.Equal(t, tc.capacity, bufCap(tc.n))
			var p bufPool
			b := p.get(tc.n)
			require.Zero(t, len(*b))
			require.Equal(t, tc.capacity, cap(*b))
		})
	}
}
