package grafana

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/datasets"
)

// fakeGrafana serves dashboards in the Grafana API shapes.
type fakeGrafana struct {
	dashboards map[string]json.RawMessage // uid → model
	order      []string
	token      string
	pageSize   int
	searches   atomic.Int32
}

func (g *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"invalid API key"}`))
		return
	}
	switch {
	case r.URL.Path == "/grafana/api/search":
		g.searches.Add(1)
		if r.URL.Query().Get("type") != "dash-db" {
			http.Error(w, "want type=dash-db", http.StatusBadRequest)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if g.pageSize > 0 && limit > g.pageSize {
			limit = g.pageSize // Grafana may cap the page size; the client must page on.
		}
		start := (page - 1) * limit
		hits := []map[string]any{}
		for i := start; i < len(g.order) && i < start+limit; i++ {
			hits = append(hits, map[string]any{"id": i + 1, "uid": g.order[i], "title": g.order[i], "type": "dash-db", "uri": "db/" + g.order[i], "url": "/d/" + g.order[i], "tags": []string{}, "isStarred": false})
		}
		_ = json.NewEncoder(w).Encode(hits)
	case r.URL.Path == "/grafana/api/library-elements/lib-cpu":
		_, _ = w.Write([]byte(`{"result":{"uid":"lib-cpu","name":"CPU","kind":1,"model":{"title":"CPU","datasource":{"type":"prometheus","uid":"p"},"targets":[{"refId":"A","expr":"sum by (mode) (rate(library_cpu_seconds_total[5m]))"}]}}}`))
	case strings.HasPrefix(r.URL.Path, "/grafana/api/dashboards/uid/"):
		uid := strings.TrimPrefix(r.URL.Path, "/grafana/api/dashboards/uid/")
		d, ok := g.dashboards[uid]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Dashboard not found"}`))
			return
		}
		_, _ = w.Write([]byte(`{"meta":{"type":"db","canSave":true,"slug":"` + uid + `","folderTitle":"General"},"dashboard":`))
		_, _ = w.Write(d)
		_, _ = w.Write([]byte(`}`))
	default:
		http.NotFound(w, r)
	}
}

func TestClientAgainstMixins(t *testing.T) {
	dir := datasets.MixinsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	g := &fakeGrafana{dashboards: map[string]json.RawMessage{}, token: "sa-token", pageSize: 7}
	want := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		uid, _ := m["uid"].(string)
		require.NotEmpty(t, uid, f)
		g.dashboards[uid] = data
		g.order = append(g.order, uid)
		local, err := ParseDashboard(data)
		require.NoError(t, err)
		want[uid] = local.Refs().Names()
	}
	srv := httptest.NewServer(g)
	defer srv.Close()

	c, err := NewClient(ClientOptions{URL: srv.URL + "/grafana/", Token: "sa-token", HTTPClient: srv.Client()})
	require.NoError(t, err)
	ds, err := c.Dashboards(context.Background())
	require.NoError(t, err)
	require.Len(t, ds, len(files))
	require.Greater(t, g.searches.Load(), int32(1), "client must follow search pages")
	for _, d := range ds {
		require.NoError(t, d.Errors(), d.UID)
		require.Equal(t, want[d.UID], d.Refs().Names(), d.UID)
		require.NotEmpty(t, d.Refs().Names(), d.UID)
	}
}

func TestClientErrors(t *testing.T) {
	g := &fakeGrafana{dashboards: map[string]json.RawMessage{"a": json.RawMessage(`{"uid":"a","panels":[]}`)}, order: []string{"a", "gone"}, token: "t"}
	srv := httptest.NewServer(g)
	defer srv.Close()

	t.Run("bad token", func(t *testing.T) {
		c, err := NewClient(ClientOptions{URL: srv.URL + "/grafana", Token: "wrong"})
		require.NoError(t, err)
		_, err = c.Dashboards(context.Background())
		var se *StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusUnauthorized, se.Code)
	})
	t.Run("one dashboard missing", func(t *testing.T) {
		c, err := NewClient(ClientOptions{URL: srv.URL + "/grafana", Token: "t"})
		require.NoError(t, err)
		ds, err := c.Dashboards(context.Background())
		require.Error(t, err)
		require.Len(t, ds, 1)
	})
	t.Run("bad url", func(t *testing.T) {
		_, err := NewClient(ClientOptions{URL: "grafana:3000"})
		require.Error(t, err)
	})
}

func TestClientResolvesLibraryPanels(t *testing.T) {
	g := &fakeGrafana{token: "t", order: []string{"lib"}, dashboards: map[string]json.RawMessage{
		"lib": json.RawMessage(`{"uid":"lib","title":"Lib","panels":[{"id":1,"gridPos":{},"libraryPanel":{"uid":"lib-cpu","name":"CPU"}},{"id":2,"libraryPanel":{"uid":"missing","name":"M"}, "targets":[{"expr":"own_metric"}]}]}`),
	}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	c, err := NewClient(ClientOptions{URL: srv.URL + "/grafana", Token: "t"})
	require.NoError(t, err)
	d, err := c.Dashboard(context.Background(), "lib")
	require.NoError(t, err)
	require.Equal(t, []string{"library_cpu_seconds_total", "own_metric"}, d.Refs().Names())
	require.Equal(t, []string{"mode"}, d.Refs().Metrics["library_cpu_seconds_total"].LabelNames())
}
