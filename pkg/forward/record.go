package forward

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/proto"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// EncodeRecord returns the WAL record payload for one accepted push: the
// marshalled ingesterv1.PushRequest exactly as the distributor sent it
// (tenant, the Remote Write 2.0 request bytes and RW 1.0 family metadata).
// Keeping the wire message means no re-encoding of the series on the push
// path and one documented format shared by the ingester and the forwarder.
func EncodeRecord(req *ingesterv1.PushRequest) ([]byte, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode wal record: %w", err)
	}
	return b, nil
}

// DecodeRecord decodes a payload written by EncodeRecord into a Batch and
// validates its symbol references. Errors wrap ErrInvalidBatch.
func DecodeRecord(payload []byte) (Batch, error) {
	var req ingesterv1.PushRequest
	if err := proto.Unmarshal(payload, &req); err != nil {
		return Batch{}, fmt.Errorf("decode wal record: %v: %w", err, ErrInvalidBatch)
	}
	b := Batch{Tenant: req.GetTenant(), Metadata: MetadataFromProto(req.GetMetadata())}
	if err := b.Request.Unmarshal(req.GetRequest()); err != nil {
		return Batch{}, fmt.Errorf("decode remote write 2.0 payload of wal record: %v: %w", err, ErrInvalidBatch)
	}
	if err := ValidateRequest(&b.Request); err != nil {
		return Batch{}, fmt.Errorf("wal record for tenant %q: %w", b.Tenant, err)
	}
	return b, nil
}

// MetadataFromProto converts wire family metadata to Remote Write 1.0 form.
func MetadataFromProto(in []*ingesterv1.MetricMetadata) []prompb.MetricMetadata {
	if len(in) == 0 {
		return nil
	}
	out := make([]prompb.MetricMetadata, len(in))
	for i, m := range in {
		out[i] = prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_MetricType(m.GetType()),
			MetricFamilyName: m.GetMetricFamilyName(),
			Help:             m.GetHelp(),
			Unit:             m.GetUnit(),
		}
	}
	return out
}

// ValidateRequest checks every symbol reference of req; errors wrap
// ErrInvalidBatch. The ingester calls it before acknowledging a push so that
// nothing it acknowledges is later refused by the forwarder.
func ValidateRequest(req *writev2.Request) error { return validate(req) }
