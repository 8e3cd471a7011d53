package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// TestRetrospectiveNativeHistograms: 1 hour of native histograms (integer
// and float counts) and floats in Prometheus 3.16; a job renames the
// metrics and deletes the originals; every histogram comes back under the
// new name with its timestamp, count, sum and buckets, and the originals
// are gone. Jobs read histograms from remote read's histogram chunks and
// write them with Remote Write 2.0.
//
//	test ──remote write──▶ Prometheus ◀──remote read / write / delete── retro.Manager (in process)
func TestRetrospectiveNativeHistograms(t *testing.T) {
	t.Parallel()
	b := startRetroPrometheus(t, true)
	end := time.Now().Truncate(time.Second)
	first := end.Add(-time.Hour)
	const n = 120 // every 30s
	var wr prompb.WriteRequest
	want := map[string]map[int64]*histogram.FloatHistogram{}
	for s, name := range []string{"legacy_latency_seconds", "legacy_size_bytes"} {
		for inst := range 3 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name},
				{Name: "instance", Value: fmt.Sprintf("i%d", inst)}, {Name: "job", Value: "retrohist"}}}
			newName := strings.Replace(name, "legacy_", "app_", 1)
			key := renderLabels(map[string]string{"__name__": newName, "instance": fmt.Sprintf("i%d", inst), "job": "retrohist"})
			want[key] = map[int64]*histogram.FloatHistogram{}
			for k := range n {
				tm := first.Add(time.Duration(k) * 30 * time.Second).UnixMilli()
				// Buckets (delta-encoded) 1+k, 1+k, 2+k-inst%2 and the
				// zero bucket: counts grow with k, as a histogram's do.
				h := &histogram.Histogram{
					ZeroCount: uint64(1 + inst), Sum: 0.25 * float64(k+1), Schema: 1, ZeroThreshold: 0.001,
					PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}},
					PositiveBuckets: []int64{int64(1 + k), 0, int64(1 - inst%2)},
				}
				h.Count = h.ZeroCount + uint64(1+k) + uint64(1+k) + uint64(2+k-inst%2)
				if s == 0 {
					ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(tm, h))
				} else {
					ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(tm, h.ToFloat(nil)))
				}
				want[key][tm] = h.ToFloat(nil)
			}
			wr.Timeseries = append(wr.Timeseries, ts)
		}
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	code, _, body := postRW(t, b.writeURL(), "application/x-protobuf", snappy.Encode(nil, raw), map[string]string{"X-Prometheus-Remote-Write-Version": "0.1.0"})
	require.Less(t, code, 300, "load history: %s", body)
	eventually(t, func(ct *assert.CollectT) bool {
		return assert.Len(ct, storedHistograms(ct, b, `{job="retrohist"}`), 6)
	}, time.Minute, 200*time.Millisecond)

	m := startRetroManager(t, retro.KindPrometheus, b.base())
	cand := "rules:\n- name: rename\n  relabel_configs:\n  - source_labels: [__name__]\n    regex: legacy_(.+)\n    target_label: __name__\n    replacement: app_$1\n"
	spec := retro.Spec{Candidate: cand, Selector: `{job="retrohist"}`, Start: first.Add(-time.Minute), End: end.Add(time.Second),
		Mode: retro.ModeExecute, DeleteOriginals: true}
	j, err := m.Submit(context.Background(), spec)
	require.NoError(t, err)
	j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
	require.Equal(t, retro.StateSucceeded, j.State, "execute: %s\n%s", j.Error, strings.Join(j.Log, "\n"))
	assert.EqualValues(t, 6*n, j.DryRun.SamplesAffected)
	assert.EqualValues(t, 6*n, j.Progress.SamplesWritten)
	assert.EqualValues(t, 6, j.Progress.SeriesDeleted)

	got := storedHistograms(t, b, `{job="retrohist"}`)
	require.Len(t, got, len(want), "only the renamed series are left")
	for key, hs := range want {
		require.Contains(t, got, key)
		require.Len(t, got[key], len(hs), key)
		for tm, h := range hs {
			g, ok := got[key][tm]
			require.True(t, ok, "%s has nothing at %d", key, tm)
			assert.Equal(t, strconv.FormatFloat(h.Count, 'f', -1, 64), g.Count, "%s at %d: count", key, tm)
			assert.Equal(t, strconv.FormatFloat(h.Sum, 'f', -1, 64), g.Sum, "%s at %d: sum", key, tm)
			assert.Len(t, g.Buckets, countNonEmpty(h), "%s at %d: buckets", key, tm)
		}
	}
}

// promHistogram is a native histogram as the Prometheus query API renders it.
type promHistogram struct {
	Count   string  `json:"count"`
	Sum     string  `json:"sum"`
	Buckets [][]any `json:"buckets"`
}

// storedHistograms returns the native histogram samples of the series
// selector matches, by rendered labels and timestamp.
func storedHistograms(t T, b *backend, selector string) map[string]map[int64]promHistogram {
	t.Helper()
	var data struct {
		Result []rangeSeries `json:"result"`
	}
	apiGet(t, b.base(), "/api/v1/query", url.Values{"query": {selector + "[3h]"}, "time": {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}}, &data)
	out := map[string]map[int64]promHistogram{}
	for _, s := range data.Result {
		m := map[int64]promHistogram{}
		for _, h := range s.Histograms {
			raw, err := json.Marshal(h[1])
			require.NoError(t, err)
			var ph promHistogram
			require.NoError(t, json.Unmarshal(raw, &ph))
			m[int64(h[0].(float64)*1000+0.5)] = ph
		}
		out[renderLabels(s.Metric)] = m
	}
	return out
}

// countNonEmpty is the number of buckets the query API lists for h: the
// zero bucket and every populated one.
func countNonEmpty(h *histogram.FloatHistogram) int {
	n := 0
	if h.ZeroCount > 0 {
		n++
	}
	for it := h.PositiveBucketIterator(); it.Next(); {
		if it.At().Count > 0 {
			n++
		}
	}
	for it := h.NegativeBucketIterator(); it.Next(); {
		if it.At().Count > 0 {
			n++
		}
	}
	return n
}
