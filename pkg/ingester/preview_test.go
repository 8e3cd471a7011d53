package ingester

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestPushFeedsPreview: every pushed series, a refused one included, is
// offered to the reservoir, and PreviewConfig answers from it; without a
// reservoir PreviewConfig is Unimplemented.
func TestPushFeedsPreview(t *testing.T) {
	cfg := cardinality.DefaultConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 2
	tr, err := cardinality.New(cfg, cardinality.Options{})
	require.NoError(t, err)
	rcfg := reservoir.DefaultConfig()
	rcfg.SampleInterval = 0
	res := reservoir.New(rcfg, prometheus.NewRegistry())
	log := appendFunc(func(context.Context, forward.Batch) error { return nil })
	svc := NewService(ServiceDeps{Log: log, Cardinality: tr, Sampler: res, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	svc.Accept(true)

	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for _, pod := range []string{"a", "b", "c"} {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "req_total", "pod", pod), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	resp, err := svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Request: b})
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.GetRefusedSeries())

	got := res.Samples("t", time.Now())
	require.Len(t, got, 1)
	require.Len(t, got[0].Series, 3, "the refused series is part of the demand the preview sees")
	require.Equal(t, writev2.Metadata_METRIC_TYPE_COUNTER, got[0].Series[0].Type)

	a := NewAnalytics(AnalyticsDeps{State: tr, Access: usage.NewAccessStats(0, 0), Preview: preview.NewIngester(res, tr, nil)})
	pr, err := a.PreviewConfig(context.Background(), &ingesterv1.PreviewConfigRequest{Rules: "rules:\n  - name: drop-a\n    scope: {selector: '{pod=\"a\"}'}\n    relabel_configs: [{action: drop, source_labels: [pod], regex: a}]\n"})
	require.NoError(t, err)
	require.Len(t, pr.GetMetrics(), 1)
	require.Equal(t, 1.0, pr.GetMetrics()[0].GetSeriesDropped())

	_, err = a.PreviewConfig(context.Background(), &ingesterv1.PreviewConfigRequest{Rules: "rules: [{name: x}]"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	none := NewAnalytics(AnalyticsDeps{State: tr, Access: usage.NewAccessStats(0, 0)})
	_, err = none.PreviewConfig(context.Background(), &ingesterv1.PreviewConfigRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
}
