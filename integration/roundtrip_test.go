package integration

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRoundTrip sends the fixture as RW 1.0 and as RW 2.0 through a cluster
// of 1 distributor and 3 ingesters, to a backend spoken to in RW 1.0 and in
// RW 2.0, and checks through the backend's query API that every series,
// sample, native histogram and exemplar arrived with identical labels and
// values. With an RW 2.0 backend, metadata shows up as the __type__ and
// __unit__ labels Prometheus derives from it (type-and-unit-labels).
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, backendProtocol := range []int{1, 2} {
		t.Run(fmt.Sprintf("backend_rw%d", backendProtocol), func(t *testing.T) {
			c := newCluster(t, 3, backendProtocol)
			for _, sender := range []struct {
				name, contentType, version string
				encode                     func(*testing.T, []fixtureSeries) []byte
			}{
				{"rw1", contentTypeV1, "0.1.0", encodeV1},
				{"rw2", contentTypeV2, "2.0.0", encodeV2},
			} {
				t.Run("sender_"+sender.name, func(t *testing.T) {
					prefix := fmt.Sprintf("rt_%s_to_rw%d", sender.name, backendProtocol)
					series := fixture(prefix, time.Now())
					code, hdr, body := postRW(t, c.writeURL(), sender.contentType, sender.encode(t, series),
						map[string]string{"X-Prometheus-Remote-Write-Version": sender.version, "X-Scope-OrgID": "team-a"})
					require.Equal(t, 204, code, body)
					if sender.name == "rw2" {
						samples, hists, exemplars := counts(series)
						require.Equal(t, strconv.Itoa(samples), hdr.Get("X-Prometheus-Remote-Write-Samples-Written"))
						require.Equal(t, strconv.Itoa(hists), hdr.Get("X-Prometheus-Remote-Write-Histograms-Written"))
						require.Equal(t, strconv.Itoa(exemplars), hdr.Get("X-Prometheus-Remote-Write-Exemplars-Written"))
					}
					checkArrived(t, c, prefix, series, backendProtocol == 2)
				})
			}
		})
	}
}

// checkArrived waits until the backend holds every fixture series and then
// compares them sample by sample.
func checkArrived(t *testing.T, c *cluster, prefix string, series []fixtureSeries, withMetadata bool) {
	t.Helper()
	selector := fmt.Sprintf(`{__name__=~"%s_.+"}`, prefix)
	var got map[string]rangeSeries
	eventually(t, func(ct *assert.CollectT) bool {
		got = c.backend.rawSamples(ct, selector)
		return len(got) == len(series) && samplesIn(got) == expectedPoints(series)
	}, 30*time.Second, 200*time.Millisecond, "backend never held all %d series of %s", len(series), prefix)

	for _, s := range series {
		want := s.labels.Map()
		if withMetadata && s.mtype != prompb.MetricMetadata_UNKNOWN {
			want["__type__"] = strings.ToLower(s.mtype.String())
			if s.unit != "" {
				want["__unit__"] = s.unit
			}
		}
		key := renderLabels(want)
		g, ok := got[key]
		require.True(t, ok, "series %s missing from the backend; it has %v", key, keys(got))
		require.Len(t, g.Values, len(s.floats), "float samples of %s", key)
		for i, f := range s.floats {
			require.Equal(t, f.Timestamp, apiMillis(g.Values[i][0]), "timestamp %d of %s", i, key)
			require.Equal(t, formatValue(f.Value), g.Values[i][1], "value %d of %s", i, key)
		}
		wantHists := len(s.hists) + len(s.floatHists)
		require.Len(t, g.Histograms, wantHists, "histograms of %s", key)
		for i := range wantHists {
			require.Equal(t, s.histTS[i], apiMillis(g.Histograms[i][0]))
			h := g.Histograms[i][1].(map[string]any)
			var count, sum float64
			if i < len(s.hists) {
				count, sum = float64(s.hists[i].Count), s.hists[i].Sum
			} else {
				count, sum = s.floatHists[i-len(s.hists)].Count, s.floatHists[i-len(s.hists)].Sum
			}
			require.Equal(t, formatValue(count), h["count"], "histogram count of %s", key)
			require.Equal(t, formatValue(sum), h["sum"], "histogram sum of %s", key)
			var bucketTotal float64
			for _, b := range h["buckets"].([]any) {
				v, err := strconv.ParseFloat(b.([]any)[3].(string), 64)
				require.NoError(t, err)
				bucketTotal += v
			}
			require.Equal(t, count, bucketTotal, "bucket counts of %s", key)
		}
		if s.exemplar != nil {
			checkExemplar(t, c, s)
		}
	}
}

func checkExemplar(t *testing.T, c *cluster, s fixtureSeries) {
	t.Helper()
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	apiGet(t, "http://"+c.backend.addr, "/api/v1/query_exemplars", url.Values{
		"query": {s.labels.Get("__name__")},
		"start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}, &data)
	require.Len(t, data, 1, "exemplar series of %s", s.labels)
	require.Len(t, data[0].Exemplars, 1)
	e := data[0].Exemplars[0]
	require.Equal(t, map[string]string{s.exemplar.Labels[0].Name: s.exemplar.Labels[0].Value}, e.Labels)
	require.Equal(t, formatValue(s.exemplar.Value), e.Value)
	require.Equal(t, s.exemplar.Timestamp, int64(math.Round(e.Timestamp*1000)))
}

func expectedPoints(series []fixtureSeries) int {
	n := 0
	for _, s := range series {
		n += len(s.floats) + len(s.hists) + len(s.floatHists)
	}
	return n
}

func samplesIn(got map[string]rangeSeries) int {
	n := 0
	for _, s := range got {
		n += len(s.Values) + len(s.Histograms)
	}
	return n
}

func keys(m map[string]rangeSeries) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// apiMillis converts a query API timestamp (float seconds) to milliseconds.
func apiMillis(v any) int64 { return int64(math.Round(v.(float64) * 1000)) }

// formatValue renders a float the way the Prometheus API does.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
