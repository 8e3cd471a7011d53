package forward

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
)

// BatchSender is a Sender that also takes series in the batch form of
// pkg/record, as the Forwarder holds them, so that nothing is converted to
// the generated types on the way to the backend. The Client is one; the
// Forwarder converts batches to writev2 requests only for a Sender that is
// not. Same contract as Sender.Send; sent counts the batch's elements.
type BatchSender interface {
	Sender
	SendBatch(ctx context.Context, tenant string, batch []byte, sent Counts, meta []prompb.MetricMetadata) error
}

var _ BatchSender = (*Client)(nil)

// payload is one batch to send, in whichever form it came.
type payload interface {
	// counts is what the series carry.
	counts() Counts
	// hasSeries reports whether there is any series.
	hasSeries() bool
	// meta is the family metadata sent with it.
	meta() []prompb.MetricMetadata
	// v1 returns the marshalled Remote Write 1.0 request and whether it
	// carries anything (series or metadata).
	v1(b *encodeBuffers) (raw []byte, any bool, err error)
	// v2 returns the marshalled Remote Write 2.0 request with the family
	// metadata attached to its series, and the metadata of families none of
	// its series belongs to.
	v2(b *encodeBuffers) (raw []byte, left []prompb.MetricMetadata, err error)
}

// v2Payload is a batch in the generated types.
type v2Payload struct {
	req *writev2.Request
	md  []prompb.MetricMetadata
}

func (p v2Payload) counts() Counts                { return countsOf(p.req) }
func (p v2Payload) hasSeries() bool               { return len(p.req.Timeseries) > 0 }
func (p v2Payload) meta() []prompb.MetricMetadata { return p.md }

func (p v2Payload) v1(b *encodeBuffers) ([]byte, bool, error) {
	v1, err := ToV1(p.req, p.md)
	if err != nil {
		return nil, false, fmt.Errorf("convert to remote write 1.0: %w", err)
	}
	if len(v1.Timeseries) == 0 && len(v1.Metadata) == 0 {
		return nil, false, nil
	}
	raw, err := b.marshal(v1)
	return raw, true, err
}

func (p v2Payload) v2(b *encodeBuffers) ([]byte, []prompb.MetricMetadata, error) {
	req2, left, err := attachMetadata(p.req, p.md)
	if err != nil {
		return nil, nil, fmt.Errorf("attach metadata: %w", err)
	}
	raw, err := b.marshal(req2)
	return raw, left, err
}

// batchPayload is a batch in pkg/record's form (validated entries).
type batchPayload struct {
	batch []byte
	sent  Counts
	md    []prompb.MetricMetadata
}

func (p batchPayload) counts() Counts                { return p.sent }
func (p batchPayload) hasSeries() bool               { return len(p.batch) > 0 }
func (p batchPayload) meta() []prompb.MetricMetadata { return p.md }

func (p batchPayload) v1(b *encodeBuffers) ([]byte, bool, error) {
	b.v1.Reset(p.md)
	it := record.NewIter(p.batch)
	for it.Next() {
		b.v1.Add(it.Entry())
	}
	if err := it.Err(); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	any := len(p.batch) > 0 || b.v1.Metadata() > 0
	return b.v1.Bytes(), any, nil
}

func (p batchPayload) v2(b *encodeBuffers) ([]byte, []prompb.MetricMetadata, error) {
	b.v2.Reset(p.md)
	it := record.NewIter(p.batch)
	for it.Next() {
		b.v2.Add(it.Entry())
	}
	if err := it.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	return b.v2.Bytes(), b.v2.Left(), nil
}
