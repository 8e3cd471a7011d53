package remotewrite

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// decodedView is what a Decoded says, with empty slices as nil: a decode
// in reused buffers may give an empty slice where a fresh one gives nil.
type decodedView struct {
	Request      []byte
	Metadata     string
	Rejected     int
	FirstInvalid string
	Sorted       int
	Origin       []int32
	WasSorted    []bool
}

func viewOf(t testing.TB, d *Decoded, err error) decodedView {
	t.Helper()
	if err != nil {
		return decodedView{FirstInvalid: "error: " + err.Error()}
	}
	req, merr := d.Request.Marshal()
	require.NoError(t, merr)
	v := decodedView{Request: req, Rejected: d.Rejected, FirstInvalid: d.FirstInvalid, Sorted: d.Sorted}
	for _, m := range d.Metadata {
		v.Metadata += m.String() + "\n"
	}
	if len(d.Origin) > 0 {
		v.Origin = append([]int32(nil), d.Origin...)
	}
	if len(d.WasSorted) > 0 {
		v.WasSorted = append([]bool(nil), d.WasSorted...)
	}
	return v
}

// checkReuse decodes payloads in turn in one DecodeBuffers and holds each
// result to a fresh decode of the same payload: nothing of an earlier
// request may show through in a later one.
func checkReuse(t *testing.T, d *Decoder, payloads [][]byte) {
	t.Helper()
	var b DecodeBuffers
	for i, p := range payloads {
		for _, origin := range []bool{true, false} {
			fresh, err := d.DecodePayload(ProtocolV1, p, origin)
			want := viewOf(t, fresh, err)
			reused, err := d.DecodePayloadWith(&b, ProtocolV1, p, origin)
			require.Equal(t, want, viewOf(t, reused, err), "payload %d (origin %v)", i, origin)
		}
	}
}

func TestDecodeBuffersReuse(t *testing.T) {
	d := NewDecoder(fuzzConfig(), testFlagPrefix)
	corpus := v1Corpus(t)
	// Forward, then backward: larger requests before smaller ones and the
	// other way round.
	all := append(append([][]byte(nil), corpus...), corpus...)
	for i := range corpus {
		all[len(corpus)+i] = corpus[len(corpus)-1-i]
	}
	checkReuse(t, d, all)
}

func FuzzDecodeBuffersReuse(f *testing.F) {
	corpus := v1Corpus(f)
	for _, b := range corpus {
		f.Add(b)
	}
	d := NewDecoder(fuzzConfig(), testFlagPrefix)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The largest of the corpus first, so that data is decoded in
		// buffers full of another request.
		largest := corpus[0]
		for _, c := range corpus {
			if len(c) > len(largest) {
				largest = c
			}
		}
		checkReuse(t, d, [][]byte{largest, data, largest, data})
	})
}
