package ingesterv1

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
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

// lentCount returns how many requests hold a buffer of c.
func lentCount(c Codec) int {
	n := 0
	c.lent.Range(func(any, any) bool { n++; return true })
	return n
}

// TestServerCodecLendsAndReleases: the server codec reads a push into a
// lent buffer that its call's answer gives back, whether the handler ran,
// failed or was never reached; an undecodable push keeps nothing lent.
func TestServerCodecLendsAndReleases(t *testing.T) {
	c := NewServerCodec()
	push := &PushRequest{Tenant: "t", Series: []byte{1, 2, 3, 0xff}}
	wire, err := NewCodec().Marshal(push)
	require.NoError(t, err)
	refused := errors.New("refused")
	for name, tc := range map[string]struct {
		data    mem.BufferSlice
		handler grpc.UnaryHandler
		wantErr error
	}{
		"answered": {data: wire, handler: func(context.Context, any) (any, error) { return &PushResponse{}, nil }},
		// A later interceptor refusing before the handler ran looks the
		// same from here: an error instead of an answer.
		"refused": {data: wire, handler: func(context.Context, any) (any, error) { return nil, refused }, wantErr: refused},
	} {
		t.Run(name, func(t *testing.T) {
			var req PushRequest
			require.NoError(t, c.Unmarshal(tc.data, &req))
			require.True(t, proto.Equal(push, &req))
			require.Equal(t, 1, lentCount(c), "the push holds a lent buffer")
			_, err := c.ReleaseInterceptor()(context.Background(), &req, &grpc.UnaryServerInfo{}, tc.handler)
			require.ErrorIs(t, err, tc.wantErr)
			require.Zero(t, lentCount(c), "the answer gave the buffer back")
		})
	}
	t.Run("undecodable", func(t *testing.T) {
		var req PushRequest
		require.Error(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x05, 'x'})}, &req))
		require.Zero(t, lentCount(c))
	})
	t.Run("the next push reads its own bytes", func(t *testing.T) {
		var a, b PushRequest
		require.NoError(t, c.Unmarshal(wire, &a))
		c.Release(&a)
		other := &PushRequest{Tenant: "u", Series: []byte{9, 8, 7, 6}}
		w2, err := NewCodec().Marshal(other)
		require.NoError(t, err)
		require.NoError(t, c.Unmarshal(w2, &b))
		require.True(t, proto.Equal(other, &b))
		c.Release(&b)
	})
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

// BenchmarkUnmarshalPush reads a 72 KiB push received in 16 KiB frames
// (HTTP/2's default), into a fresh buffer (NewCodec) and into a lent one
// given back after each call (NewServerCodec).
func BenchmarkUnmarshalPush(b *testing.B) {
	wire, err := NewCodec().Marshal(&PushRequest{Tenant: "t", Series: make([]byte, 72<<10)})
	require.NoError(b, err)
	flat := wire.Materialize()
	var frames mem.BufferSlice
	for len(flat) > 0 {
		n := min(len(flat), 16<<10)
		frames = append(frames, mem.SliceBuffer(flat[:n]))
		flat = flat[n:]
	}
	for name, c := range map[string]Codec{"fresh": NewCodec(), "lent": NewServerCodec()} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(frames.Len()))
			b.ReportAllocs()
			var req PushRequest
			for b.Loop() {
				if err := c.Unmarshal(frames, &req); err != nil {
					b.Fatal(err)
				}
				c.Release(&req)
			}
		})
	}
}
