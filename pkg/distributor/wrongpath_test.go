package distributor

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWrongWritePaths(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+WritePath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	MountWrongWritePaths(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for name, tc := range map[string]struct {
		method, path string
		wantCode     int
		wantMsg      string
	}{
		"Mimir's push path":      {http.MethodPost, "/api/v1/push", 404, "promgov receives Prometheus Remote Write 1.0 and 2.0 at POST /api/v1/write (/api/v1/push is Mimir's and Cortex's write path)"},
		"OTLP":                   {http.MethodPost, "/otlp/v1/metrics", 404, "it does not receive OTLP"},
		"a bare /write":          {http.MethodPost, "/write", 404, "at POST /api/v1/write; point the sender's remote write URL at http://<distributor>/api/v1/write"},
		"Thanos Receive":         {http.MethodPost, "/api/v1/receive", 404, "Thanos Receive's write path"},
		"any method":             {http.MethodGet, "/api/v1/push", 404, "at POST /api/v1/write"},
		"the right path":         {http.MethodPost, WritePath, 204, ""},
		"the right path, by GET": {http.MethodGet, WritePath, 405, ""},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("x"))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tc.wantCode, resp.StatusCode, "%s", body)
			require.Contains(t, string(body), tc.wantMsg)
		})
	}
}
