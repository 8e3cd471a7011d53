package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// ErrNoIngester is returned by FanOut when no ingester answered.
var ErrNoIngester = errors.New("no ingester answered")

// ErrNoActiveIngester is the ErrNoIngester of a ring without an ACTIVE
// ingester to ask, as while a cluster starts.
var ErrNoActiveIngester = fmt.Errorf("%w: the ring has no ACTIVE ingester", ErrNoIngester)

// FanOut is the distributor's cardinality.Source: it asks every ACTIVE or
// LEAVING ingester through the Query RPC, with sketches, and merges the
// answers (MergeMetrics, MergeTenants), so tenant totals are sketch unions,
// never sums. An ingester that fails is left out of the answer and logged;
// the answer fails only when none answered. Safe for concurrent use.
type FanOut struct {
	cfg     Config
	members Membership
	clients Clients
	logger  *slog.Logger
	m       *fanOutMetrics
}

var _ cardinality.Source = (*FanOut)(nil)

// NewFanOut builds the fan-out source. reg and logger may be nil.
func NewFanOut(cfg Config, members Membership, clients Clients, logger *slog.Logger, reg prometheus.Registerer) *FanOut {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FanOut{cfg: cfg, members: members, clients: clients, logger: logger, m: newFanOutMetrics(reg)}
}

// Metrics implements cardinality.Source.
func (f *FanOut) Metrics(ctx context.Context, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	parts, err := fanOut(ctx, f, cardinality.PathMetrics, params(q), cardinality.DecodeMetrics)
	if err != nil {
		return nil, err
	}
	return cardinality.MergeMetrics(parts, q)
}

// Metric implements cardinality.Source.
func (f *FanOut) Metric(ctx context.Context, name string, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	parts, err := fanOut(ctx, f, cardinality.PathMetrics+"/"+url.PathEscape(name), params(q), cardinality.DecodeMetrics)
	if err != nil {
		return nil, err
	}
	return cardinality.MergeMetrics(parts, q)
}

// Tenants implements cardinality.Source.
func (f *FanOut) Tenants(ctx context.Context, q cardinality.Query) ([]cardinality.TenantCardinality, error) {
	parts, err := fanOut(ctx, f, cardinality.PathTenants, params(q), cardinality.DecodeTenants)
	if err != nil {
		return nil, err
	}
	return cardinality.MergeTenants(parts, q)
}

// params asks an ingester for the same rows, with sketches to merge, and
// with the listing's labels when q asks for them. Since each metric has one
// owner, every ingester's top q.Limit together hold the cluster's top
// q.Limit.
func params(q cardinality.Query) url.Values {
	v := url.Values{"sketches": {"true"}}
	if q.Labels {
		v.Set("labels", "true")
	}
	if q.Tenant != "" {
		v.Set("tenant", q.Tenant)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	return v
}

// fanOut queries every ingester concurrently and decodes each answer. A
// 404 (the ingester does not track the metric) is an empty part.
func fanOut[T any](ctx context.Context, f *FanOut, path string, v url.Values, decode func([]byte) ([]T, error)) ([][]T, error) {
	ingesters := peers(f.members, false)
	if len(ingesters) == 0 {
		return nil, ErrNoActiveIngester
	}
	raw := v.Encode()
	answers := make([][]T, len(ingesters))
	answered := make([]bool, len(ingesters))
	errs := eachConcurrently(ingesters, func(i int, in ring.Member) error {
		rows, err := query(ctx, f, in, path, raw, decode)
		if err != nil {
			return fmt.Errorf("ingester %s (%s): %w", in.Name, in.GRPCAddress, err)
		}
		answers[i], answered[i] = rows, true
		return nil
	})
	var parts [][]T
	for i, ok := range answered {
		if ok {
			parts = append(parts, answers[i])
		}
	}
	f.m.calls.WithLabelValues(resultSuccess).Add(float64(len(parts)))
	f.m.calls.WithLabelValues(resultFailure).Add(float64(len(errs)))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoIngester, errors.Join(errs...))
	}
	if len(errs) > 0 {
		f.logger.Warn("cardinality API answered without some ingesters", "path", path,
			"answered", len(parts), "failed", len(errs), "err", errors.Join(errs...))
	}
	return parts, nil
}

func query[T any](ctx context.Context, f *FanOut, in ring.Member, path, raw string, decode func([]byte) ([]T, error)) ([]T, error) {
	c, err := f.clients.Client(in.GRPCAddress)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.QueryTimeout)
	defer cancel()
	resp, err := c.Query(ctx, &ingesterv1.QueryRequest{Path: path, RawQuery: raw}, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
	if err != nil {
		return nil, err
	}
	switch resp.GetStatusCode() {
	case http.StatusOK:
		return decode(resp.GetBody())
	case http.StatusNotFound:
		return nil, nil
	default:
		if _, err := decode(resp.GetBody()); err != nil {
			return nil, fmt.Errorf("status %d: %w", resp.GetStatusCode(), err)
		}
		return nil, fmt.Errorf("status %d", resp.GetStatusCode())
	}
}
