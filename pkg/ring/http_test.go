package ring

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHTTPHandlers(t *testing.T) {
	ing := startNode(t, testConfig("ingester-a"), RoleIngester, "127.0.0.1:9095")
	dist := startNode(t, testConfig("distributor-a", ing.BindAddress()), RoleDistributor, "")
	joining := startNode(t, testConfig("ingester-b", ing.BindAddress()), RoleIngester, "127.0.0.1:9096")
	require.NoError(t, ing.SetState(StateActive))
	require.Eventually(t, func() bool {
		return len(dist.Members()) == 3 && dist.Placement().NumIngesters() == 1
	}, converge, tick)

	mux := http.NewServeMux()
	dist.RegisterRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("status json", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/promgov/api/v1/status/ring")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)

		want := `{"status":"success","data":{"partition_count":271,"members":[
		  {"name":"distributor-a","role":"distributor","state":"ACTIVE","address":"` + dist.BindAddress() + `","grpc_address":"","partitions":0,"share":0},
		  {"name":"ingester-a","role":"ingester","state":"ACTIVE","address":"` + ing.BindAddress() + `","grpc_address":"127.0.0.1:9095","partitions":271,"share":1},
		  {"name":"ingester-b","role":"ingester","state":"JOINING","address":"` + joining.BindAddress() + `","grpc_address":"127.0.0.1:9096","partitions":0,"share":0}
		]}}`
		require.JSONEq(t, want, string(body))
	})

	t.Run("status matches Status()", func(t *testing.T) {
		rec := httptest.NewRecorder()
		dist.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/promgov/api/v1/status/ring", nil))
		var got Status
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.Equal(t, dist.Status(), got)
	})

	t.Run("html page", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/ring")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"))
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		page := string(body)
		for _, want := range []string{
			`<meta http-equiv="refresh"`,
			"Seen by <b>distributor-a</b>",
			"<td>ingester-a</td>", "<td>ingester-b</td>", "<td>distributor-a</td>",
			`<td class="JOINING">JOINING</td>`,
			"<td>127.0.0.1:9095</td>",
			"<td>271</td><td>100.0%</td>",
		} {
			require.Contains(t, page, want)
		}
	})

	t.Run("method not allowed", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/promgov/api/v1/status/ring", "text/plain", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

func TestPageEscapesNames(t *testing.T) {
	r, err := New(testConfig("<script>alert(1)</script>"), RoleDistributor, "", nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close(t.Context())) }()
	rec := httptest.NewRecorder()
	r.PageHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ring", nil))
	require.NotContains(t, rec.Body.String(), "<script>")
	require.Contains(t, rec.Body.String(), "&lt;script&gt;")
}
