// Package ingester implements the governor node's gRPC Push API: it decodes
// and validates the batches distributors send, appends each one to the
// write-ahead log and answers only once the record is durable (per the
// WAL's sync policy). The forwarder (forward.WALForwarder) sends the WAL to
// the backend independently.
//
// The same gRPC server serves the cluster service (Analytics, registered
// with Server.RegisterCluster): the typed analytics rows and query
// statistics distributors merge, RecordAccess, peer sketch sync and
// ring-change handoff.
//
// Status mapping: a full WAL (size or age bound under the backpressure
// policy, or a full disk) answers RESOURCE_EXHAUSTED, which distributors
// turn into 429 with Retry-After; any other WAL failure answers UNAVAILABLE
// (the sender retries); an undecodable or invalid batch, or one larger than
// a WAL segment, INVALID_ARGUMENT. Series a cardinality limit refuses are
// not an error: they are left out of the WAL and counted in
// PushResponse.refused_series, and the rest of the batch is written.
package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Log makes accepted batches durable. Implementations must be safe for
// concurrent use. Append returns only once the record is durable; an error
// wrapping wal.ErrFull means "try again later", any other error means the
// record was not taken.
//
// A push announces its append with Expect(1) as it starts and makes it with
// AppendExpected (or withdraws it with Expect(-1)), so the log can wait for
// the pushes already under way to share an fsync, and for nothing else. A
// log that does not group appends may ignore Expect.
type Log interface {
	Append(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error)
	AppendExpected(ctx context.Context, typ wal.RecordType, payload []byte) (wal.Position, error)
	Expect(n int)
}

var _ Log = (*wal.WAL)(nil)

// Service implements ingesterv1.IngesterServiceServer.
type Service struct {
	ingesterv1.UnimplementedIngesterServiceServer

	log      Log
	logger   *slog.Logger
	accepted atomic.Bool

	// cardinality governs every batch before the WAL append.
	cardinality Observer
	// agg runs aggregation rules after admission.
	agg Aggregator
	// overflow folds series refused by a per-metric limit with on_limit:
	// overflow into __overflow__ series.
	overflow OverflowAggregator
	policy   OverflowPolicy
	// overflowOn is false for NoOverflow: refused series are then not
	// collected for it.
	overflowOn bool
	// sampler feeds the impact preview's reservoir (preview.go).
	sampler Sampler

	requests *prometheus.CounterVec
	received *prometheus.CounterVec
	scratch  sync.Pool // *pushScratch
}

var _ ingesterv1.IngesterServiceServer = (*Service)(nil)

// ServiceDeps are what the Push service works with. Log is required; an
// optional part left nil is its no-op (AdmitAll, NoAggregation,
// NoOverflow), which the push path runs like any other.
type ServiceDeps struct {
	// Log is the WAL every accepted batch is appended to.
	Log Log
	// Cardinality governs every batch before the WAL append; nil is
	// AdmitAll.
	Cardinality Observer
	// Aggregator runs the aggregation rules after cardinality admission
	// and before the WAL; nil is NoAggregation.
	Aggregator Aggregator
	// Overflow folds the series a per-metric limit with on_limit: overflow
	// refused into __overflow__ series, with the labels OverflowPolicy
	// names; nil is NoOverflow (they stay refused).
	Overflow       OverflowAggregator
	OverflowPolicy OverflowPolicy
	Logger         *slog.Logger
	Registerer     prometheus.Registerer

	// Sampler takes every push's series, as received, into the impact
	// preview's reservoir; nil takes nothing.
	Sampler Sampler
}

// NewService builds the Push service. It refuses pushes until Accept(true).
func NewService(d ServiceDeps) *Service {
	if d.Log == nil {
		panic("ingester.NewService: Log is required")
	}
	if d.Cardinality == nil {
		d.Cardinality = AdmitAll{}
	}
	if d.Aggregator == nil {
		d.Aggregator = NoAggregation{}
	}
	overflowOn := d.Overflow != nil && d.OverflowPolicy != nil
	if !overflowOn {
		d.Overflow, d.OverflowPolicy = NoOverflow{}, NoOverflow{}
	}
	if d.Sampler == nil {
		d.Sampler = noSampler{}
	}
	f := promauto.With(d.Registerer)
	return &Service{
		sampler:     d.Sampler,
		scratch:     sync.Pool{New: func() any { return new(pushScratch) }},
		log:         d.Log,
		logger:      d.Logger,
		cardinality: d.Cardinality,
		agg:         d.Aggregator,
		overflow:    d.Overflow,
		policy:      d.OverflowPolicy,
		overflowOn:  overflowOn,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ingester_push_requests_total",
			Help: "Push requests by gRPC status code.",
		}, []string{"code"}),
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ingester_received_total",
			Help: "Samples, histograms and exemplars accepted from distributors.",
		}, []string{"kind"}),
	}
}

// Accept switches whether Push takes new batches. The ingester turns it off
// when it starts leaving the ring, so in-flight senders get UNAVAILABLE and
// retry against the new owner.
func (s *Service) Accept(on bool) { s.accepted.Store(on) }

// Push implements ingesterv1.IngesterServiceServer.
func (s *Service) Push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	resp, err := s.push(ctx, req)
	s.requests.WithLabelValues(status.Code(err).String()).Inc()
	return resp, err
}

func (s *Service) push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	if !s.accepted.Load() {
		return nil, status.Error(codes.Unavailable, "ingester is not accepting pushes (joining or leaving the ring)")
	}
	// Announce the append, so a group commit under way waits for it;
	// every return before AppendExpected withdraws it.
	s.log.Expect(1)
	announced := true
	defer func() {
		if announced {
			s.log.Expect(-1)
		}
	}()
	batch, err := batchOf(req)
	if err != nil {
		return nil, err
	}
	sc := s.scratch.Get().(*pushScratch)
	defer func() {
		clear(sc.names) // no reference to the batch outlives the push
		s.scratch.Put(sc)
	}()
	var c counted
	c, err = countBatch(batch, sc)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid series batch: %v", err)
	}
	s.sampler.Offer(req.GetTenant(), batch, sc.names, time.Now())
	// Cardinality limits: refused series are removed from the batch before
	// the WAL append, so the WAL holds exactly what the answer below
	// acknowledges; the answer counts the refusals.
	var gov governed
	var took aggregate.Taken
	if c.series > 0 {
		kept, g := governBatch(s.cardinality, req.GetTenant(), batch, sc, time.Now(), s.overflowOn)
		if g.refused > 0 {
			if len(g.perMetric) > 0 { // on_limit: overflow
				took = s.overflowRefused(req.GetTenant(), &g)
			}
			batch, gov = kept, g
			if c, err = countBatch(batch, sc); err != nil {
				return nil, status.Errorf(codes.Internal, "count the governed batch: %v", err)
			}
		}
	}
	// Aggregation: series aggregated away are taken out before the WAL;
	// they count as written (the rule took them).
	if c.series > 0 {
		rest, t := s.aggregateBatch(req, batch, sc.names)
		if t.Series > 0 {
			batch, took = rest, took.Add(t)
			if c, err = countBatch(batch, sc); err != nil {
				return nil, status.Errorf(codes.Internal, "count the aggregated batch: %v", err)
			}
		}
	}
	if c.series == 0 && len(req.GetMetadata()) == 0 {
		return gov.response(withTaken(took, &ingesterv1.PushResponse{})), nil
	}
	payload, err := forward.AppendRecord(sc.record[:0], &ingesterv1.PushRequest{Tenant: req.GetTenant(), Series: batch, Metadata: req.GetMetadata()})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if cap(payload) <= maxKeptRecord {
		sc.record = payload // reused once Append returned
	}
	announced = false // AppendExpected ends the announcement
	if _, err := s.log.AppendExpected(ctx, wal.RecordBatch, payload); err != nil {
		if errors.Is(err, wal.ErrFull) {
			return nil, status.Errorf(codes.ResourceExhausted, "ingester applies backpressure: %v", err)
		}
		if errors.Is(err, wal.ErrRecordTooLarge) {
			// Retrying cannot help; the sender must send smaller requests.
			return nil, status.Errorf(codes.InvalidArgument, "batch larger than the ingester's --wal.segment-size-bytes: %v", err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "append batch: %v", err)
	}
	s.received.WithLabelValues("samples").Add(float64(c.samples))
	s.received.WithLabelValues("histograms").Add(float64(c.histograms))
	s.received.WithLabelValues("exemplars").Add(float64(c.exemplars))
	return gov.response(withTaken(took, &ingesterv1.PushResponse{
		SamplesWritten:    int64(c.samples),
		HistogramsWritten: int64(c.histograms),
		ExemplarsWritten:  int64(c.exemplars),
	})), nil
}

// batchOf returns the series batch of req: its series, or its Remote Write
// 2.0 request (as distributors before issue 12 sent it) validated and
// converted.
func batchOf(req *ingesterv1.PushRequest) ([]byte, error) {
	if len(req.GetRequest()) == 0 {
		return req.GetSeries(), nil
	}
	if len(req.GetSeries()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "a push carries series or a remote write 2.0 request, not both")
	}
	var rw writev2.Request
	if err := rw.Unmarshal(req.GetRequest()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode remote write 2.0 payload: %v", err)
	}
	if err := forward.ValidateRequest(&rw); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid remote write 2.0 payload: %v", err)
	}
	return record.FromV2(nil, &rw), nil
}

// pushScratch is reused between pushes.
type pushScratch struct {
	names  []string // metric name of each entry, aliasing the batch
	record []byte   // the WAL record
	gov    governScratch
}

// maxKeptRecord bounds the record buffer a pushScratch keeps.
const maxKeptRecord = 8 << 20

// counted is what a batch carries.
type counted struct {
	series, samples, histograms, exemplars int
}

// countBatch validates every entry of batch and counts what it carries;
// sc.names receives each entry's metric name (aliasing batch).
func countBatch(batch []byte, sc *pushScratch) (counted, error) {
	var c counted
	sc.names = sc.names[:0]
	it := record.NewIter(batch)
	for it.Next() {
		e := it.Entry()
		name, err := e.Validate()
		if err != nil {
			return c, fmt.Errorf("series %d: %w", c.series, err)
		}
		sc.names = append(sc.names, unsafe.String(unsafe.SliceData(name), len(name)))
		c.series++
		c.samples += e.Samples
		c.histograms += e.Histograms
		c.exemplars += e.Exemplars
	}
	return c, it.Err()
}

// MetadataToProto converts Remote Write 1.0 family metadata for the wire.
func MetadataToProto(in []prompb.MetricMetadata) []*ingesterv1.MetricMetadata {
	if len(in) == 0 {
		return nil
	}
	out := make([]*ingesterv1.MetricMetadata, len(in))
	for i, m := range in {
		out[i] = &ingesterv1.MetricMetadata{
			Type:             int32(m.Type),
			MetricFamilyName: m.MetricFamilyName,
			Help:             m.Help,
			Unit:             m.Unit,
		}
	}
	return out
}
