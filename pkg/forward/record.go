package forward

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/proto"

	"github.com/promgov/promgov/pkg/record"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// EncodeRecord returns the WAL record payload for one accepted push: the
// marshalled ingesterv1.PushRequest as the distributor sent it (tenant, the
// series batch in pkg/record's form and RW 1.0 family metadata). Keeping
// the wire message means no re-encoding of the series on the push path and
// one documented format shared by the ingester and the forwarder.
func EncodeRecord(req *ingesterv1.PushRequest) ([]byte, error) { return AppendRecord(nil, req) }

// AppendRecord is EncodeRecord appending to dst (a reused buffer).
func AppendRecord(dst []byte, req *ingesterv1.PushRequest) ([]byte, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend(dst, req)
	if err != nil {
		return nil, fmt.Errorf("encode wal record: %w", err)
	}
	return b, nil
}

// walRecord is a WAL record as the forwarder uses it.
type walRecord struct {
	tenant string
	batch  []byte // pkg/record entries
	meta   []prompb.MetricMetadata
	count  int // samples + histograms + exemplars
}

// readRecord decodes a payload written by EncodeRecord and checks its
// batch's framing. A record in the older form (a Remote Write 2.0 request,
// written before issue 12) is validated and converted. Errors wrap
// ErrInvalidBatch.
func readRecord(payload []byte) (walRecord, error) {
	// The batch is read in place: r.batch aliases payload, and so must
	// not outlive it (the WAL reader lends its buffer until its next read).
	// The tenant and the metadata are copies.
	var req ingesterv1.PushRequest
	if err := ingesterv1.ParsePush(payload, &req); err != nil {
		return walRecord{}, fmt.Errorf("decode wal record: %v: %w", err, ErrInvalidBatch)
	}
	r := walRecord{tenant: req.GetTenant(), batch: req.GetSeries(), meta: MetadataFromProto(req.GetMetadata())}
	if len(req.GetRequest()) > 0 {
		var v2 writev2.Request
		if err := v2.Unmarshal(req.GetRequest()); err != nil {
			return walRecord{}, fmt.Errorf("decode remote write 2.0 payload of wal record: %v: %w", err, ErrInvalidBatch)
		}
		if err := ValidateRequest(&v2); err != nil {
			return walRecord{}, fmt.Errorf("wal record for tenant %q: %w", r.tenant, err)
		}
		r.batch = record.FromV2(r.batch, &v2)
	}
	it := record.NewIter(r.batch)
	for it.Next() {
		r.count += it.Entry().Count()
	}
	if err := it.Err(); err != nil {
		return walRecord{}, fmt.Errorf("wal record for tenant %q: %w: %w", r.tenant, err, ErrInvalidBatch)
	}
	return r, nil
}

// DecodeRecord decodes a payload written by EncodeRecord into a Batch (the
// series in the generated 2.0 types) and validates it. Errors wrap
// ErrInvalidBatch.
func DecodeRecord(payload []byte) (Batch, error) {
	r, err := readRecord(payload)
	if err != nil {
		return Batch{}, err
	}
	it := record.NewIter(r.batch)
	for it.Next() {
		if _, err := it.Entry().Validate(); err != nil {
			return Batch{}, fmt.Errorf("wal record for tenant %q: %w: %w", r.tenant, err, ErrInvalidBatch)
		}
	}
	req, _, err := record.ToV2Request(r.batch, nil)
	if err != nil {
		return Batch{}, fmt.Errorf("wal record for tenant %q: %w: %w", r.tenant, err, ErrInvalidBatch)
	}
	return Batch{Tenant: r.tenant, Request: *req, Metadata: r.meta}, nil
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
