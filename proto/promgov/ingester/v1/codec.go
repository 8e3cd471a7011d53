package ingesterv1

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Codec is gRPC's protobuf codec with a cheaper way for PushRequest, the
// one large message of the data path: its series batch is handed to the
// transport as it is (no copy into a pooled, zeroed buffer) and read back
// in place (no copy out of the received frames beyond the one that joins
// them). Every other message goes through the default codec. Distributors
// call with it (grpc.ForceCodecV2) and ingesters serve with it
// (grpc.ForceServerCodecV2). Safe for concurrent use.
//
// The caller of Marshal must keep PushRequest.Series unchanged until the
// call returns, and after a failed call until it drops the buffer: the
// transport may still be writing it.
type Codec struct {
	base encoding.CodecV2
	// pool and lent are the server codec's (NewServerCodec): the pool a
	// PushRequest is read into and, per request, the buffer it holds. Nil
	// reads each push into a fresh buffer.
	pool mem.BufferPool
	lent *sync.Map // *PushRequest -> mem.Buffer
}

var _ encoding.CodecV2 = Codec{}

// NewCodec returns the codec.
func NewCodec() Codec { return Codec{base: encoding.GetCodecV2(grpcproto.Name)} }

// pushPoolExponents are the server codec's buffer sizes: powers of two from
// 4 KiB to 4 MiB (a push of 500 series is about 72 KiB).
var pushPoolExponents = []uint8{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}

// NewServerCodec returns the codec of a server that gives back what it
// read: each PushRequest is read into a reference-counted buffer from a
// pool (gRPC's own, when the push came in one frame), which Release frees,
// instead of a fresh one per call. Every PushRequest it decodes must be
// released once nothing uses its Series, Request or anything aliasing them;
// ReleaseInterceptor does that for unary calls, whatever the handler or a
// later interceptor answers.
func NewServerCodec() Codec {
	pool, err := mem.NewBinaryTieredBufferPool(pushPoolExponents...)
	if err != nil {
		panic(fmt.Sprintf("push buffer pool: %v", err)) // the exponents are constant and valid
	}
	c := NewCodec()
	c.pool, c.lent = pool, &sync.Map{}
	return c
}

// Release frees the buffer req was read into, if this codec lent one.
// req's Series and Request must not be used afterwards.
func (c Codec) Release(req *PushRequest) {
	if c.lent == nil {
		return
	}
	if buf, ok := c.lent.LoadAndDelete(req); ok {
		buf.(mem.Buffer).Free()
	}
}

// ReleaseInterceptor releases every PushRequest once its call is answered.
// Chain it first, so that it sees the answer of every later interceptor,
// including a refusal before the handler ran.
func (c Codec) ReleaseInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if r, ok := req.(*PushRequest); ok {
			c.Release(r)
		}
		return resp, err
	}
}

// Name is the default codec's ("proto"): the wire format is the same.
func (c Codec) Name() string { return c.base.Name() }

// Marshal implements encoding.CodecV2.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	req, ok := v.(*PushRequest)
	if !ok || len(req.GetSeries()) == 0 {
		return c.base.Marshal(v)
	}
	head := &PushRequest{Tenant: req.GetTenant(), Request: req.GetRequest(), Metadata: req.GetMetadata()}
	b, err := proto.MarshalOptions{}.MarshalAppend(nil, head)
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, fieldSeries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(req.GetSeries())))
	return mem.BufferSlice{mem.SliceBuffer(b), mem.SliceBuffer(req.GetSeries())}, nil
}

// fieldSeries is PushRequest.series.
const fieldSeries = 4

// Unmarshal implements encoding.CodecV2.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*PushRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	if c.pool == nil {
		return ParsePush(data.Materialize(), req)
	}
	buf := data.MaterializeToBuffer(c.pool)
	if err := ParsePush(buf.ReadOnlyData(), req); err != nil {
		buf.Free()
		return err
	}
	c.lent.Store(req, buf)
	return nil
}

// ParsePush decodes a marshalled PushRequest into req as proto.Unmarshal
// does, except that Series and Request alias b instead of copying it.
func ParsePush(b []byte, req *PushRequest) error {
	req.Reset()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			// An unknown field, or a known one of another wire type, which
			// proto.Unmarshal keeps as unknown too.
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			b = b[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
		switch num {
		case 1:
			if !utf8.Valid(v) {
				return errors.New("push request tenant is not valid UTF-8")
			}
			req.Tenant = string(v)
		case 2:
			req.Request = v
		case 3:
			md := &MetricMetadata{}
			if err := proto.Unmarshal(v, md); err != nil {
				return fmt.Errorf("push request metadata: %w", err)
			}
			req.Metadata = append(req.Metadata, md)
		case fieldSeries:
			req.Series = v
		}
	}
	return nil
}
