package ingesterv1

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

func TestCodecMatchesDefault(t *testing.T) {
	base := encoding.GetCodecV2(grpcproto.Name)
	c := NewCodec()
	for name, msg := range map[string]*PushRequest{
		"series and metadata": {Tenant: "t", Series: []byte{1, 2, 3, 0xff}, Metadata: []*MetricMetadata{{Type: 1, MetricFamilyName: "up", Help: "h"}}},
		"legacy request":      {Tenant: "t", Request: []byte{0x22, 0x00}},
		"empty":               {},
	} {
		t.Run(name, func(t *testing.T) {
			ours, err := c.Marshal(msg)
			require.NoError(t, err)
			theirs, err := base.Marshal(msg)
			require.NoError(t, err)
			var a, b PushRequest
			require.NoError(t, base.Unmarshal(ours, &a), "the default codec reads what this one writes")
			require.NoError(t, c.Unmarshal(theirs, &b), "this codec reads what the default one writes")
			require.True(t, proto.Equal(msg, &a))
			require.True(t, proto.Equal(msg, &b))
		})
	}
	// Other messages take the default codec.
	q := &GetAccessRequest{Tenant: "x"}
	data, err := c.Marshal(q)
	require.NoError(t, err)
	var back GetAccessRequest
	require.NoError(t, c.Unmarshal(data, &back))
	require.True(t, proto.Equal(q, &back))
}

// FuzzParsePush: ParsePush accepts what proto.Unmarshal accepts, with the
// same result, and never panics.
func FuzzParsePush(f *testing.F) {
	seed, err := proto.Marshal(&PushRequest{Tenant: "t", Series: []byte{1}, Metadata: []*MetricMetadata{{Unit: "s"}}})
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ours, want PushRequest
		errOurs := ParsePush(b, &ours)
		errWant := proto.Unmarshal(b, &want)
		if errWant == nil && errOurs == nil {
			want.ProtoReflect().SetUnknown(nil)
			require.True(t, proto.Equal(&want, &ours))
		}
		if errWant == nil && errOurs != nil {
			t.Fatalf("ParsePush refused what proto.Unmarshal accepts: %v", errOurs)
		}
		_ = mem.BufferSlice{}
	})
}
