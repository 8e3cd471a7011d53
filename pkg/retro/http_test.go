package retro

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/web"
)

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, web.Envelope[json.RawMessage]) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env web.Envelope[json.RawMessage]
	require.NoError(t, json.Unmarshal(b, &env), "%s", b)
	return resp.StatusCode, env
}

func specJSON(t *testing.T, s Spec) string {
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

func TestAPI(t *testing.T) {
	be := newMem()
	fill(be, 3)
	m, _ := startManager(t, testConfig(t), be)
	mux := http.NewServeMux()
	m.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	code, env := call(t, srv, http.MethodPost, PathRetrospective, specJSON(t, spec(ModeExecute, true)))
	require.Equal(t, http.StatusOK, code, env.Error)
	var j Job
	require.NoError(t, json.Unmarshal(env.Data, &j))
	require.Eventually(t, func() bool {
		code, env := call(t, srv, http.MethodGet, PathJobs+"/"+j.ID, "")
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(env.Data, &j))
		return j.State == StateSucceeded
	}, 10*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 3, j.Progress.SeriesDone)

	code, env = call(t, srv, http.MethodGet, PathJobs, "")
	require.Equal(t, http.StatusOK, code)
	var list []Job
	require.NoError(t, json.Unmarshal(env.Data, &list))
	assert.Len(t, list, 1)

	code, env = call(t, srv, http.MethodPost, PathJobs+"/"+j.ID+"/cancel", "")
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, env.Error, "succeeded")
	code, _ = call(t, srv, http.MethodPost, PathJobs+"/"+j.ID+"/resume", "")
	assert.Equal(t, http.StatusConflict, code)
	code, env = call(t, srv, http.MethodGet, PathJobs+"/nope", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "error", env.Status)
	code, _ = call(t, srv, http.MethodPost, PathJobs+"/nope/resume", "")
	assert.Equal(t, http.StatusNotFound, code)

	for name, tc := range map[string]struct{ body, want string }{
		"not json":      {"{", "job request"},
		"unknown field": {`{"selector":"x","colour":"red"}`, `unknown field "colour"`},
		"bad selector":  {`{"selector":"{a=","candidate":"rules: []","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`, "selector"},
		"bad range":     {`{"selector":"up","start":"2026-12-01T10:00:00Z","end":"2026-12-01T09:00:00Z"}`, "range"},
		"bad time":      {`{"selector":"up","start":"yesterday"}`, "job request"},
		"bad backend": {`{"selector":"up","candidate":"rules: [{name: a, relabel_configs: [{action: drop, regex: x, source_labels: [a]}]}]","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","backend":{"kind":"cortex","url":"http://127.0.0.1:1"}}`,
			"backend.kind"},
		"tombstones without deletes": {`{"selector":"up","mode":"execute","clean_tombstones":true,"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`,
			"clean_tombstones: only with delete_originals"},
		"tombstones where there are none": {`{"selector":"up","candidate":"rules: [{name: a, relabel_configs: [{action: drop, regex: x, source_labels: [a]}]}]","mode":"execute","delete_originals":true,"clean_tombstones":true,"confirm":true,"start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z"}`,
			"clean_tombstones: not supported by the backend: only Prometheus keeps tombstones"},
	} {
		t.Run(name, func(t *testing.T) {
			code, env := call(t, srv, http.MethodPost, PathRetrospective, tc.body)
			assert.Equal(t, http.StatusBadRequest, code)
			assert.Equal(t, "bad_data", env.ErrorType)
			assert.Contains(t, env.Error, tc.want)
		})
	}
}

func FuzzDecodeSpec(f *testing.F) {
	f.Add([]byte(`{"selector":"up","start":"2026-12-01T10:00:00Z","end":"2026-12-01T11:00:00Z","mode":"execute","throttles":{"max_concurrency":2}}`))
	f.Add([]byte(`{"candidate":"rules: []","backend":{"kind":"prometheus","url":"http://x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSpec(b)
		if err != nil {
			return
		}
		_ = s.validate(time.Now()) // must not panic
	})
}
