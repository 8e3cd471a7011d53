package ingester

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage/accesspb"
	"github.com/promgov/promgov/pkg/web"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// CardinalityState is what the cluster RPCs need of the ingester's
// cardinality.Tracker. Implementations must be safe for concurrent use.
type CardinalityState interface {
	// TenantSketches returns the admitted-series sketch of every tenant.
	TenantSketches(now time.Time) (map[string][]byte, error)
	// TrackedMetrics lists every tracked (tenant, metric).
	TrackedMetrics() []cardinality.MetricKey
	// ExportMetric encodes one metric's state; cardinality.ErrNotTracked
	// when there is none.
	ExportMetric(tenant, metric string, now time.Time) ([]byte, error)
	// ForgetMetric drops one metric's state.
	ForgetMetric(tenant, metric string)
}

var _ CardinalityState = (*cardinality.Tracker)(nil)

// QueryPathPrefix is the only URL path prefix Query serves: the read-only
// analytics API (/promgov/api/v1/cardinality/..., /promgov/api/v1/usage/access).
const QueryPathPrefix = web.APIPrefix + "/"

// legacyQueryPathPrefix is the prefix distributors of the previous release
// ask for; Query serves it as QueryPathPrefix for one release, so
// ingesters can be upgraded before distributors.
const legacyQueryPathPrefix = web.LegacyAPIPrefix + "/"

// maxQueryBody bounds one Query answer; the distributor asks for at most
// its own limit of rows, so a bigger answer is a bug, not data.
const maxQueryBody = 64 << 20

// Analytics implements the cluster RPCs of the ingester service: Query
// (the analytics API over gRPC), TenantSketches (peer sync), ListMetrics
// and ExportMetric (ring-change handoff). Push stays unimplemented here;
// Service delegates these RPCs to Analytics. It is safe for concurrent use.
type Analytics struct {
	ingesterv1.UnimplementedIngesterServiceServer

	node    string
	state   CardinalityState
	access  AccessState      // nil: no query statistics (SetAccess)
	agg     AggregationState // nil: no aggregation rules (SetAggregation)
	handler http.Handler
	now     func() time.Time
}

var _ ingesterv1.IngesterServiceServer = (*Analytics)(nil)

// NewAnalytics serves state's cluster RPCs and, through Query, handler's
// read-only endpoints (cardinality.NewHandler over the Tracker, plus any
// other analytics routes mounted on it). node is this ingester's ring name,
// reported to peers. now may be nil (time.Now).
func NewAnalytics(node string, state CardinalityState, handler http.Handler, now func() time.Time) *Analytics {
	if now == nil {
		now = time.Now
	}
	return &Analytics{node: node, state: state, handler: handler, now: now}
}

// Query serves req as an HTTP GET of the analytics handler.
func (a *Analytics) Query(ctx context.Context, req *ingesterv1.QueryRequest) (*ingesterv1.QueryResponse, error) {
	path := req.GetPath()
	if rest, ok := strings.CutPrefix(path, legacyQueryPathPrefix); ok {
		path = QueryPathPrefix + rest
	}
	if !strings.HasPrefix(path, QueryPathPrefix) || strings.Contains(path, "..") {
		return nil, status.Errorf(codes.InvalidArgument, "query path %q: only paths under %s are served", req.GetPath(), QueryPathPrefix)
	}
	if a.handler == nil {
		return &ingesterv1.QueryResponse{StatusCode: http.StatusNotFound, Body: []byte("no analytics handler\n")}, nil
	}
	u := &url.URL{Scheme: "http", Host: "ingester", Path: path, RawQuery: req.GetRawQuery()}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "query %s: %v", path, err)
	}
	if t := req.GetTenant(); t != "" {
		hr.Header.Set("X-Scope-OrgID", t)
	}
	rec := &recorder{header: http.Header{}}
	a.handler.ServeHTTP(rec, hr)
	if rec.overflow {
		return nil, status.Errorf(codes.ResourceExhausted, "query %s: answer larger than %d bytes", path, maxQueryBody)
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &ingesterv1.QueryResponse{
		StatusCode:  int32(rec.code),
		ContentType: rec.header.Get("Content-Type"),
		Body:        rec.body.Bytes(),
	}, nil
}

// TenantSketches answers this ingester's admitted-series sketch of every
// tenant it tracks.
func (a *Analytics) TenantSketches(_ context.Context, _ *ingesterv1.TenantSketchesRequest) (*ingesterv1.TenantSketchesResponse, error) {
	sks, err := a.state.TenantSketches(a.now())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "tenant sketches: %v", err)
	}
	resp := &ingesterv1.TenantSketchesResponse{Node: a.node, Sketches: make([]*ingesterv1.TenantSketch, 0, len(sks))}
	for tenant, b := range sks {
		resp.Sketches = append(resp.Sketches, &ingesterv1.TenantSketch{Tenant: tenant, Sketch: b})
	}
	slices.SortFunc(resp.Sketches, func(x, y *ingesterv1.TenantSketch) int { return strings.Compare(x.Tenant, y.Tenant) })
	return resp, nil
}

// ListMetrics answers the tracked metrics whose placement key falls in the
// requested partitions.
func (a *Analytics) ListMetrics(_ context.Context, req *ingesterv1.ListMetricsRequest) (*ingesterv1.ListMetricsResponse, error) {
	n := uint64(req.GetPartitionCount())
	if n == 0 {
		return nil, status.Error(codes.InvalidArgument, "list metrics: partition_count must be positive")
	}
	want := make(map[uint64]bool, len(req.GetPartitions()))
	for _, p := range req.GetPartitions() {
		want[uint64(p)] = true
	}
	resp := &ingesterv1.ListMetricsResponse{}
	var buf []byte
	for _, k := range a.state.TrackedMetrics() {
		buf = ring.Key(buf[:0], k.Tenant, k.Metric)
		// The same computation as ring.Placement.Partition.
		if want[xxhash.Sum64(buf)%n] {
			resp.Metrics = append(resp.Metrics, &ingesterv1.MetricKey{Tenant: k.Tenant, Metric: k.Metric})
		}
	}
	return resp, nil
}

// ExportMetric answers one metric's state and query statistics and, when
// asked, forgets them so that its new owner alone counts them from now on.
// An observation that lands between the export and the forget is lost from
// this ingester's state; the new owner's next pull picks up anything
// arriving later. A metric with statistics but no cardinality state is
// found with an empty state.
func (a *Analytics) ExportMetric(_ context.Context, req *ingesterv1.ExportMetricRequest) (*ingesterv1.ExportMetricResponse, error) {
	resp := &ingesterv1.ExportMetricResponse{}
	b, err := a.state.ExportMetric(req.GetTenant(), req.GetMetric(), a.now())
	switch {
	case errors.Is(err, cardinality.ErrNotTracked):
	case err != nil:
		return nil, status.Errorf(codes.Internal, "export metric: %v", err)
	default:
		resp.Found, resp.State = true, b
		if req.GetForget() {
			a.state.ForgetMetric(req.GetTenant(), req.GetMetric())
		}
	}
	if a.access != nil {
		if acc, ok := a.access.Metric(req.GetTenant(), req.GetMetric(), req.GetForget()); ok {
			resp.Found, resp.Access = true, &ingesterv1.MetricAccess{Metric: req.GetMetric(), Stats: accesspb.Stats(acc)}
		}
	}
	if a.agg != nil {
		b, err := a.agg.ExportMetric(req.GetTenant(), req.GetMetric(), req.GetForget())
		if err != nil {
			return nil, status.Errorf(codes.Internal, "export aggregation state: %v", err)
		}
		if b != nil {
			resp.Found, resp.Aggregation = true, b
		}
	}
	return resp, nil
}

// recorder is a minimal http.ResponseWriter that keeps the answer.
type recorder struct {
	header   http.Header
	code     int
	body     bytes.Buffer
	overflow bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(b) > maxQueryBody {
		r.overflow = true
		return 0, fmt.Errorf("answer larger than %d bytes", maxQueryBody)
	}
	return r.body.Write(b)
}
