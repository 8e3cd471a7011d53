package cardinality

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, url string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	return rec.Code, rec.Body.Bytes()
}

func limitedTracker(t *testing.T) (*Tracker, *clock) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Metrics = []MetricOverride{{Metric: "http_requests_total", LimitOverrides: LimitOverrides{MaxSeriesPerMetric: ptr(100)}}}
	tr := newTracker(t, cfg, c)
	now := c.now()
	for i := range 150 {
		s := mkSeries("team-a", "http_requests_total", i, "path", fmt.Sprint("/p", i), "code", fmt.Sprint(200+i%3))
		s.Samples = 4
		tr.Observe(s, now)
	}
	for i := range 40 {
		tr.Observe(mkSeries("team-a", "up", i), now)
		tr.Observe(mkSeries("team-b", "node_cpu_seconds_total", i, "cpu", fmt.Sprint(i%8)), now)
	}
	c.advance(60e9)
	return tr, c
}

func TestHandler(t *testing.T) {
	tr, _ := limitedTracker(t)
	h := NewHandler(tr, "", nil)

	code, body := get(t, h, PathMetrics+"?sort=refused&limit=2")
	require.Equal(t, http.StatusOK, code, string(body))
	t.Logf("GET %s?sort=refused&limit=2 →\n%s", PathMetrics, body)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	require.Equal(t, "success", raw["status"])
	row := raw["data"].([]any)[0].(map[string]any)
	for _, f := range []string{"name", "tenant", "series", "samples_rate", "refused_series", "limit"} {
		require.Contains(t, row, f)
	}
	require.NotContains(t, row, "series_sketch")
	rows, err := DecodeMetrics(body)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, MetricCardinality{Name: "http_requests_total", Tenant: "team-a", Series: 150, SamplesRate: 10, BytesRate: 250, RefusedSeries: 50, Limit: 100}, rows[0])

	code, body = get(t, h, PathMetrics+"/http_requests_total?tenant=team-a")
	require.Equal(t, http.StatusOK, code)
	t.Logf("GET %s/http_requests_total?tenant=team-a →\n%s", PathMetrics, body)
	rows, err = DecodeMetrics(body)
	require.NoError(t, err)
	require.Equal(t, []LabelCardinality{
		{Name: "id", Values: 150, SeriesWithout: 150},
		{Name: "path", Values: 150, SeriesWithout: 150},
		{Name: "code", Values: 3, SeriesWithout: 150},
	}, rows[0].Labels, "id and path each identify a series on their own: dropping either merges nothing")

	code, body = get(t, h, PathTenants)
	require.Equal(t, http.StatusOK, code)
	t.Logf("GET %s →\n%s", PathTenants, body)
	ts, err := DecodeTenants(body)
	require.NoError(t, err)
	require.Equal(t, []string{"team-a", "team-b"}, []string{ts[0].Tenant, ts[1].Tenant})
	require.Equal(t, uint64(190), ts[0].Series)
	require.Equal(t, uint64(50), ts[0].RefusedSeries)

	code, body = get(t, h, PathTenants+"?tenant=nobody")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"success","data":[]}`, string(body))

	for name, tc := range map[string]struct {
		url     string
		code    int
		errType string
	}{
		"bad sort":       {PathMetrics + "?sort=name", http.StatusBadRequest, "bad_data"},
		"bad limit":      {PathMetrics + "?limit=ten", http.StatusBadRequest, "bad_data"},
		"bad sketches":   {PathTenants + "?sketches=maybe", http.StatusBadRequest, "bad_data"},
		"bad metric arg": {PathMetrics + "/x?limit=z", http.StatusBadRequest, "bad_data"},
		"unknown metric": {PathMetrics + "/nope", http.StatusNotFound, "not_found"},
	} {
		t.Run(name, func(t *testing.T) {
			code, body := get(t, h, tc.url)
			require.Equal(t, tc.code, code)
			var env Envelope[json.RawMessage]
			require.NoError(t, json.Unmarshal(body, &env))
			require.Equal(t, "error", env.Status)
			require.Equal(t, tc.errType, env.ErrorType)
			require.NotEmpty(t, env.Error)
			_, err := DecodeMetrics(body)
			require.ErrorIs(t, err, ErrAPI)
		})
	}
}

type failingSource struct{ err error }

func (f failingSource) Metrics(context.Context, Query) ([]MetricCardinality, error) {
	return nil, f.err
}
func (f failingSource) Metric(context.Context, string, Query) ([]MetricCardinality, error) {
	return nil, f.err
}
func (f failingSource) Tenants(context.Context, Query) ([]TenantCardinality, error) {
	return nil, f.err
}

func TestHandlerSourceErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		code int
	}{
		"internal": {errors.New("boom"), http.StatusInternalServerError},
		"timeout":  {fmt.Errorf("fan-out: %w", context.DeadlineExceeded), http.StatusServiceUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			h := NewHandler(failingSource{tc.err}, "", nil)
			for _, p := range []string{PathMetrics, PathMetrics + "/x", PathTenants} {
				code, _ := get(t, h, p)
				require.Equal(t, tc.code, code, p)
			}
		})
	}
}

// fanOut is a distributor-side Source as the lead wires it: it asks every
// ingester with sketches=true and merges.
type fanOut struct{ urls []string }

func (f fanOut) fetch(ctx context.Context, path string, q Query) ([][]byte, error) {
	var out [][]byte
	for _, u := range f.urls {
		url := fmt.Sprintf("%s%s?tenant=%s&limit=%d&sort=%s&sketches=true", u, path, q.Tenant, q.Limit, q.Sort)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusNotFound {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func (f fanOut) metrics(ctx context.Context, path string, q Query) ([]MetricCardinality, error) {
	bodies, err := f.fetch(ctx, path, q)
	if err != nil {
		return nil, err
	}
	var parts [][]MetricCardinality
	for _, b := range bodies {
		p, err := DecodeMetrics(b)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return MergeMetrics(parts, q)
}

func (f fanOut) Metrics(ctx context.Context, q Query) ([]MetricCardinality, error) {
	return f.metrics(ctx, PathMetrics, q)
}

func (f fanOut) Metric(ctx context.Context, name string, q Query) ([]MetricCardinality, error) {
	return f.metrics(ctx, PathMetrics+"/"+name, q)
}

func (f fanOut) Tenants(ctx context.Context, q Query) ([]TenantCardinality, error) {
	bodies, err := f.fetch(ctx, PathTenants, q)
	if err != nil {
		return nil, err
	}
	var parts [][]TenantCardinality
	for _, b := range bodies {
		p, err := DecodeTenants(b)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return MergeTenants(parts, q)
}

// TestHandlerTenantHeader: the configured tenant header alone selects the
// tenant, as on the write path; the tenant parameter still works, and the
// two must agree when both are sent.
func TestHandlerTenantHeader(t *testing.T) {
	tr, _ := limitedTracker(t)
	h := NewHandler(tr, "X-Tenant", nil)
	tests := map[string]struct {
		url, tenant string
		code        int
		wantTenants []string
		wantErr     string
	}{
		"no tenant: every tenant":  {url: PathMetrics + "?limit=-1", code: http.StatusOK, wantTenants: []string{"team-a", "team-b"}},
		"header alone":             {url: PathMetrics + "?limit=-1", tenant: "team-b", code: http.StatusOK, wantTenants: []string{"team-b"}},
		"parameter alone":          {url: PathMetrics + "?limit=-1&tenant=team-a", code: http.StatusOK, wantTenants: []string{"team-a"}},
		"both agree":               {url: PathMetrics + "?limit=-1&tenant=team-b", tenant: "team-b", code: http.StatusOK, wantTenants: []string{"team-b"}},
		"one metric, header alone": {url: PathMetrics + "/up", tenant: "team-a", code: http.StatusOK, wantTenants: []string{"team-a"}},
		"one metric, other tenant": {url: PathMetrics + "/up", tenant: "team-b", code: http.StatusNotFound},
		"tenants listing, header":  {url: PathTenants, tenant: "team-b", code: http.StatusOK, wantTenants: []string{"team-b"}},
		"header and parameter clash": {url: PathMetrics + "?tenant=team-a", tenant: "team-b", code: http.StatusBadRequest,
			wantErr: `tenant: the tenant parameter "team-a" and the X-Tenant header "team-b" name different tenants; send one, or the same in both`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tc.url, nil)
			if tc.tenant != "" {
				req.Header.Set("X-Tenant", tc.tenant)
			}
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			if tc.wantErr != "" {
				var env Envelope[json.RawMessage]
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
				require.Equal(t, "bad_data", env.ErrorType)
				require.Equal(t, tc.wantErr, env.Error)
				return
			}
			if tc.code != http.StatusOK {
				return
			}
			var tenants []string
			if tc.url == PathTenants {
				rows, err := DecodeTenants(rec.Body.Bytes())
				require.NoError(t, err)
				for _, r := range rows {
					tenants = append(tenants, r.Tenant)
				}
			} else {
				rows, err := DecodeMetrics(rec.Body.Bytes())
				require.NoError(t, err)
				for _, r := range rows {
					if !slices.Contains(tenants, r.Tenant) {
						tenants = append(tenants, r.Tenant)
					}
				}
			}
			slices.Sort(tenants)
			require.Equal(t, tc.wantTenants, tenants)
		})
	}
}

func TestDistributorFanOut(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 50
	single := newTracker(t, cfg, c)
	var urls []string
	var ingesters []*Tracker
	for range 3 {
		tr := newTracker(t, cfg, c)
		srv := httptest.NewServer(NewHandler(tr, "", nil))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
		ingesters = append(ingesters, tr)
	}
	now := c.now()
	for i := range 3000 {
		m := i % 12
		s := mkSeries(fmt.Sprint("t", m%2), fmt.Sprint("m", m), i, "shard", fmt.Sprint(i%9))
		single.Observe(s, now)
		ingesters[m%3].Observe(s, now)
	}
	dist := NewHandler(fanOut{urls}, "", nil)

	for _, path := range []string{
		PathTenants, PathMetrics + "?limit=5&sort=refused", PathMetrics + "?tenant=t1&sort=samples_rate",
		PathMetrics + "/m3", PathMetrics + "/m4?tenant=t0",
	} {
		code, got := get(t, dist, path)
		require.Equal(t, http.StatusOK, code, path)
		code, want := get(t, NewHandler(single, "", nil), path)
		require.Equal(t, http.StatusOK, code, path)
		require.JSONEq(t, string(want), string(got), path)
	}
	code, _ := get(t, dist, PathMetrics+"/nope")
	require.Equal(t, http.StatusNotFound, code)
}

func TestMergeErrors(t *testing.T) {
	bad := []MetricCardinality{{Name: "m", Tenant: "t", SeriesSketch: []byte("junk")}}
	_, err := MergeMetrics([][]MetricCardinality{bad}, Query{})
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = MergeTenants([][]TenantCardinality{{{Tenant: "t", RefusedSketch: []byte{2}}}}, Query{})
	require.ErrorIs(t, err, ErrCorrupt)
	p12, p14 := newSketch(12), newSketch(14)
	p12.InsertHash(1)
	p14.InsertHash(1)
	b12, err := p12.MarshalBinary()
	require.NoError(t, err)
	b14, err := p14.MarshalBinary()
	require.NoError(t, err)
	_, err = MergeSketches(b12, b14)
	require.ErrorIs(t, err, ErrIncompatible)
	// Without sketches, numbers are never added: the largest is a lower bound.
	got, err := MergeTenants([][]TenantCardinality{{{Tenant: "t", Series: 10}}, {{Tenant: "t", Series: 7}}}, Query{})
	require.NoError(t, err)
	require.Equal(t, uint64(10), got[0].Series)
	_, err = DecodeTenants([]byte(`{"status":"maybe"}`))
	require.Error(t, err)
	_, err = DecodeTenants([]byte(`not json`))
	require.Error(t, err)
}

// TestTopMetricsMatchesSortAndCut checks TopMetrics against SortMetrics
// then a cut, for every order, small and large k, with ties.
func TestTopMetricsMatchesSortAndCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []MetricCardinality
	for i := range 2000 {
		rows = append(rows, MetricCardinality{
			Name: fmt.Sprintf("m%d", i), Tenant: fmt.Sprintf("t%d", rng.IntN(7)),
			Series: uint64(rng.IntN(50)), SamplesRate: float64(rng.IntN(30)), RefusedSeries: uint64(rng.IntN(5)),
		})
	}
	for _, by := range []string{"", SortSeries, SortSamplesRate, SortRefused} {
		for _, k := range []int{0, 1, 5, 100, 249, 251, 1999, 2000, 5000} {
			want := slices.Clone(rows)
			SortMetrics(want, by)
			want = want[:min(k, len(want))]
			got := TopMetrics(slices.Clone(rows), by, k)
			require.Equal(t, want, got, "by=%q k=%d", by, k)
		}
	}
}
