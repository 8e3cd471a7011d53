package forward

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// FuzzCompressIsSnappy: what the forwarder sends is a snappy block that
// golang/snappy (the reference Go decoder Prometheus uses) decodes back to
// the request, whatever the request, with the buffer reused between
// requests.
func FuzzCompressIsSnappy(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	f.Add([]byte{})
	f.Add([]byte("a"))
	f.Add(bytes.Repeat([]byte("rwload_metric_1 instance=host-1:9100 "), 3000))
	f.Add(random)
	var bufs encodeBuffers
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := bufs.compress(raw)
		back, err := snappy.Decode(nil, out)
		require.NoError(t, err)
		require.True(t, bytes.Equal(raw, back), "round trip")
	})
}
