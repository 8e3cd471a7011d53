package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// retroAggCandidate normalises ids in path, which merges the stored
// series of one instance, and aggregates the merged counter without
// instance, per minute.
const retroAggCandidate = `rules:
- name: normalise-path
  action: rewrite
  labels:
    normalize:
    - labels: [path]
      builtin: [number]
aggregations:
- name: orders
  match: orders_total
  type: counter
  without: [instance]
  interval: 1m
`

// TestRetrospectiveMergeThroughAggregation: 40 minutes of history of 12
// counters, 3 instances × 4 ids in path, some of which reset. The rules
// merge each instance's 4 series into one, which a rewrite refuses; the
// aggregation rule takes them, and the execution writes its outputs, one
// per path and minute, equal to a reference computed here from the samples
// loaded (running totals of the inputs' increases, a reset counting the
// new value), then deletes the originals. Against Prometheus 3.16 and
// VictoriaMetrics.
//
//	test ──remote write──▶ backend ◀──read/write/delete── retro.Manager (in process)
func TestRetrospectiveMergeThroughAggregation(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{retro.KindPrometheus, retro.KindVictoriaMetrics} {
		t.Run(kind, func(t *testing.T) {
			var b *backend
			if kind == retro.KindPrometheus {
				b = startRetroPrometheus(t, true)
			} else {
				b = startVictoriaMetrics(t)
			}
			end := time.Now().Truncate(time.Minute)
			first := end.Add(-40 * time.Minute)
			// inputs: output group (path) → its inputs' samples.
			inputs := map[string][][]prompb.Sample{}
			var wr prompb.WriteRequest
			for i := range 3 {
				for id := range 4 {
					ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "orders_total"},
						{Name: "instance", Value: fmt.Sprintf("10.0.2.%d:9100", i)}, {Name: "job", Value: "retroagg"},
						{Name: "path", Value: fmt.Sprintf("/orders/%d", 1000+10*i+id)}}}
					v := 0.0
					for k := range 160 { // every 15s
						v += float64(1 + (i+id+k)%3)
						if (i+id)%2 == 1 && k == 80 {
							v = 2 // a restart
						}
						ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: first.Add(time.Duration(k) * 15 * time.Second).UnixMilli(), Value: v})
					}
					wr.Timeseries = append(wr.Timeseries, ts)
					inputs["/orders/:id"] = append(inputs["/orders/:id"], ts.Samples)
				}
			}
			raw, err := wr.Marshal()
			require.NoError(t, err)
			code, _, body := postRW(t, b.writeURL(), "application/x-protobuf", snappy.Encode(nil, raw), map[string]string{"X-Prometheus-Remote-Write-Version": "0.1.0"})
			require.Less(t, code, 300, "load history: %s", body)
			eventually(t, func(ct *assert.CollectT) bool {
				return assert.Len(ct, storedSamples(ct, b, kind, `{job="retroagg"}`), 12)
			}, time.Minute, 200*time.Millisecond)

			m := startRetroManager(t, kind, b.base())
			spec := retro.Spec{Candidate: retroAggCandidate, Selector: `{job="retroagg"}`, Start: first.Add(-time.Minute), End: end}
			j, err := m.Submit(context.Background(), spec)
			require.NoError(t, err)
			j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
			require.Equal(t, retro.StateSucceeded, j.State, "dry run: %s", j.Error)
			dr := j.DryRun
			assert.EqualValues(t, 12, dr.SeriesMerged)
			assert.Zero(t, dr.SeriesMergeRefused)
			assert.EqualValues(t, 12, dr.SeriesAggregated)
			assert.EqualValues(t, 12*160, dr.SamplesAggregated)
			assert.EqualValues(t, 1, dr.AggregationGroups)

			spec.Mode, spec.DeleteOriginals = retro.ModeExecute, true
			j, err = m.Submit(context.Background(), spec)
			require.NoError(t, err)
			j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
			require.Equal(t, retro.StateSucceeded, j.State, "execute: %s\n%s", j.Error, strings.Join(j.Log, "\n"))
			t.Logf("%s", strings.Join(j.Log, "\n"))

			want := retroHistory{}
			for path, series := range inputs {
				want[renderLabels(map[string]string{"__name__": "orders_total:sum_without_instance", "job": "retroagg", "path": path})] = referenceSums(series, time.Minute)
			}
			got := storedSamples(t, b, kind, `{job="retroagg"}`)
			assert.Equal(t, want, got)
			assert.EqualValues(t, 12, j.Progress.SeriesDeleted)
		})
	}
}

// referenceSums is what an aggregation of counters over interval writes:
// per interval holding samples, at its end minus 1ms, the running total of
// the inputs' increases (a decrease is a reset: the increase is the new
// value; an input's first sample adds nothing).
func referenceSums(inputs [][]prompb.Sample, interval time.Duration) [][2]string {
	iv := interval.Milliseconds()
	delta := map[int64]float64{}
	for _, in := range inputs {
		for k, s := range in {
			start := s.Timestamp - s.Timestamp%iv
			if _, ok := delta[start]; !ok {
				delta[start] = 0
			}
			if k == 0 {
				continue
			}
			d := s.Value - in[k-1].Value
			if s.Value < in[k-1].Value {
				d = s.Value
			}
			delta[start] += d
		}
	}
	starts := make([]int64, 0, len(delta))
	for s := range delta {
		starts = append(starts, s)
	}
	slices.Sort(starts)
	var out [][2]string
	total := 0.0
	for _, s := range starts {
		total += delta[s]
		out = append(out, [2]string{strconv.FormatInt(s+iv-1, 10), strconv.FormatFloat(total, 'f', -1, 64)})
	}
	return out
}
