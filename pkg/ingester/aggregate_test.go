package ingester

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/forward"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// writtenSeries is a Log that records the series appended, as label
// strings (read them once the pushes returned).
func writtenSeries() (Log, *[]string) {
	var (
		mu      sync.Mutex
		written []string
	)
	return appendFunc(func(_ context.Context, b forward.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, ts := range b.Request.Timeseries {
			ls, err := ts.ToLabels(&labels.ScratchBuilder{}, b.Request.Symbols)
			if err != nil {
				return err
			}
			written = append(written, ls.String())
		}
		return nil
	}), &written
}

// TestPushAggregates: series an aggregation rule takes are answered as
// written but not appended; the outputs are appended when the interval
// closes.
func TestPushAggregates(t *testing.T) {
	log, written := writtenSeries()
	eng, err := aggregate.New(aggregate.Config{Rules: []aggregate.RuleConfig{{
		Name: "r", Match: "req_total", Without: []string{"pod"}, Interval: pmodel.Duration(10 * time.Second), MaxDelay: pmodel.Duration(time.Second),
	}}}, nil, nil)
	require.NoError(t, err)
	svc := NewService(ServiceDeps{Log: log, Aggregator: eng, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	svc.Accept(true)

	now := time.Now().Truncate(10 * time.Second).Add(-20 * time.Second) // a closed interval by now
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for i, pod := range []string{"a", "b"} {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "req_total", "pod", pod), nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now.UnixMilli()}, {Value: float64(i + 5), Timestamp: now.Add(time.Second).UnixMilli()}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		})
	}
	req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "x"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: now.UnixMilli()}},
	})
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	resp, err := svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Request: b})
	require.NoError(t, err)
	require.Equal(t, int64(5), resp.GetSamplesWritten(), "taken samples count as written")
	require.Equal(t, []string{`{__name__="up", job="x"}`}, *written, "the inputs taken are not appended")

	agg := aggregate.NewService(eng, "", WALOutputs{Log: log}, nil, nil, nil)
	agg.Flush(context.Background())
	require.Equal(t, []string{`{__name__="up", job="x"}`, `{__name__="req_total:sum_without_pod"}`}, *written)
}

// TestPushWithoutRulesIsUntouched: no aggregator, nothing taken.
func TestPushWithoutRulesIsUntouched(t *testing.T) {
	eng, err := aggregate.New(aggregate.Config{}, nil, nil)
	require.NoError(t, err)
	require.Nil(t, eng, "no rules, no engine: the push path does nothing more")
}

// TestPushGainsRulesOnReload: an ingester started without aggregation
// rules writes batches untouched, and aggregates once a reload adds a rule;
// once the rule is removed and its interval closed, it writes them again.
func TestPushGainsRulesOnReload(t *testing.T) {
	log, written := writtenSeries()
	eng, err := aggregate.NewEngine(aggregate.Config{}, nil, nil)
	require.NoError(t, err)
	svc := NewService(ServiceDeps{Log: log, Aggregator: eng, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	svc.Accept(true)
	start := time.Now().Truncate(10 * time.Second).Add(-time.Minute)
	pushAt := func(ts time.Time, v float64) {
		t.Helper()
		st := writev2.NewSymbolTable()
		req := writev2.Request{Timeseries: []writev2.TimeSeries{{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "req_total", "pod", "a"), nil),
			Samples:    []writev2.Sample{{Value: v, Timestamp: ts.UnixMilli()}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		}}}
		req.Symbols = st.Symbols()
		b, err := req.Marshal()
		require.NoError(t, err)
		_, err = svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Request: b})
		require.NoError(t, err)
	}
	pushAt(start, 1)
	require.Equal(t, []string{`{__name__="req_total", pod="a"}`}, *written, "no rules: written as it is")
	rule := aggregate.RuleConfig{Name: "r", Match: "req_total", Without: []string{"pod"}, Interval: pmodel.Duration(10 * time.Second), MaxDelay: pmodel.Duration(time.Second)}
	_, err = eng.Reload(aggregate.Config{Rules: []aggregate.RuleConfig{rule}}, start)
	require.NoError(t, err)
	pushAt(start.Add(time.Second), 2)
	pushAt(start.Add(2*time.Second), 5)
	require.Len(t, *written, 1, "the rule added by the reload takes the series")
	_, err = eng.Reload(aggregate.Config{}, start.Add(3*time.Second))
	require.NoError(t, err)
	pushAt(start.Add(11*time.Second), 6) // after the removed rule's hand-over
	agg := aggregate.NewService(eng, "", WALOutputs{Log: log}, nil, nil, nil)
	agg.Flush(context.Background())
	require.Equal(t, []string{`{__name__="req_total", pod="a"}`, `{__name__="req_total", pod="a"}`, `{__name__="req_total:sum_without_pod"}`}, *written)
	require.False(t, eng.HasRules())
}
