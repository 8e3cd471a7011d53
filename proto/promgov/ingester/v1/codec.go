package ingesterv1

import (
	"errors"
	"fmt"
	"unicode/utf8"

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
type Codec struct{ base encoding.CodecV2 }

var _ encoding.CodecV2 = Codec{}

// NewCodec returns the codec.
func NewCodec() Codec { return Codec{base: encoding.GetCodecV2(grpcproto.Name)} }

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
	return ParsePush(data.Materialize(), req)
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
