package govapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/promgov/promgov/pkg/govstore"
)

type notifier struct{ got []uint64 }

func (n *notifier) Notify(v uint64) { n.got = append(n.got, v) }
func (n *notifier) Status() any     { return map[string]int{"nodes": 0} }

const doc1 = "rules:\n  - name: a\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: a_.*\n        action: drop\n"
const doc2 = "rules:\n  - name: b\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: b_.*\n        action: drop\n"

func do(t *testing.T, h http.Handler, method, path, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	return rec.Code, out
}

func newAPI(t *testing.T, bkt objstore.Bucket) (*http.ServeMux, *notifier) {
	mux := http.NewServeMux()
	n := &notifier{}
	New(govstore.New(bkt), n, 5*time.Second, slog.New(slog.DiscardHandler)).Register(mux)
	return mux, n
}

func TestAPI(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	mux, n := newAPI(t, bkt)

	code, out := do(t, mux, "PUT", PathConfig, doc1, nil)
	require.Equal(t, http.StatusPreconditionRequired, code, out)

	code, out = do(t, mux, "PUT", PathConfig, doc1, map[string]string{"If-Match": "0", HeaderUser: "alice", HeaderMessage: "first"})
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 1, out["data"].(map[string]any)["version"])
	require.Equal(t, "alice", out["data"].(map[string]any)["author"])

	code, out = do(t, mux, "PUT", PathConfig, doc2, map[string]string{"If-Match": "1"})
	require.Equal(t, http.StatusOK, code, out)

	// Stale: 409 with the current version.
	code, out = do(t, mux, "PUT", PathConfig, doc1, map[string]string{"If-Match": "1"})
	require.Equal(t, http.StatusConflict, code, out)
	require.Equal(t, "conflict", out["errorType"])
	require.EqualValues(t, 2, out["data"].(map[string]any)["version"])

	// Invalid: 400 naming the field, nothing stored.
	code, out = do(t, mux, "PUT", PathConfig, doc1+doc1[len("rules:\n"):], map[string]string{"If-Match": "2"})
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "rules[1].name")

	code, out = do(t, mux, "GET", PathConfig, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out["data"].(map[string]any)["yaml"], "name: b")

	code, out = do(t, mux, "GET", PathDiff+"?from=1&to=2", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out["data"].(map[string]any)["diff"], "+  - name: b")

	code, out = do(t, mux, "POST", PathRollback, "", nil)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 3, out["data"].(map[string]any)["version"])
	require.Equal(t, "rollback to version 1", out["data"].(map[string]any)["message"])

	code, out = do(t, mux, "PUT", PathConfig+"?mode=shadow", doc2, map[string]string{"If-Match": "3"})
	require.Equal(t, http.StatusOK, code, out)
	code, out = do(t, mux, "POST", PathVersions+"/4/promote", "", nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, n.got, "every write is announced: a shadow candidate runs beside the active version")

	code, out = do(t, mux, "GET", PathVersions, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["data"].(map[string]any)["versions"], 5)

	for name, path := range map[string]string{"zero": PathVersions + "/0", "word": PathVersions + "/x", "diff": PathDiff + "?from=-1"} {
		t.Run(name, func(t *testing.T) {
			code, _ := do(t, mux, "GET", path, "", nil)
			require.Equal(t, http.StatusBadRequest, code)
		})
	}
	code, _ = do(t, mux, "GET", PathVersions+"/99", "", nil)
	require.Equal(t, http.StatusNotFound, code)
}

type downBucket struct{ objstore.Bucket }

var errDown = errors.New("connection refused")

func (downBucket) Iter(context.Context, string, func(string) error, ...objstore.IterOption) error {
	return errDown
}
func (downBucket) Get(context.Context, string) (io.ReadCloser, error) { return nil, errDown }

func TestAPIStoreUnreachable(t *testing.T) {
	mux, n := newAPI(t, downBucket{objstore.NewInMemBucket()})
	code, out := do(t, mux, "PUT", PathConfig, doc1, map[string]string{"If-Match": "0"})
	require.Equal(t, http.StatusServiceUnavailable, code, out)
	require.Contains(t, out["error"], "unavailable")
	require.Empty(t, n.got)
	code, _ = do(t, mux, "GET", PathConfig, "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// TestAPICrossOriginWrites: a browser request from another site cannot
// write, promote or roll back (403 in the envelope, nothing stored); the
// same origin, and clients that are not browsers, can.
func TestAPICrossOriginWrites(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	mux, n := newAPI(t, bkt)
	code, out := do(t, mux, "PUT", PathConfig, doc1, map[string]string{"If-Match": "0"})
	require.Equal(t, http.StatusOK, code, out)
	code, out = do(t, mux, "PUT", PathConfig+"?mode=shadow", doc2, map[string]string{"If-Match": "1"})
	require.Equal(t, http.StatusOK, code, out)
	for name, tc := range map[string]struct{ method, path string }{
		"write":    {"PUT", PathConfig},
		"promote":  {"POST", PathVersions + "/2/promote"},
		"rollback": {"POST", PathRollback + "?to=1"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
				hdr["If-Match"] = "2"
				code, out := do(t, mux, tc.method, tc.path, doc2, hdr)
				require.Equal(t, http.StatusForbidden, code, out)
				require.Equal(t, "forbidden", out["errorType"])
				require.Contains(t, out["error"], "cross-origin browser request refused")
			}
		})
	}
	code, out = do(t, mux, "GET", PathVersions, "", map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusOK, code, "reads are not affected")
	require.Len(t, out["data"].(map[string]any)["versions"], 2, "nothing was written")
	code, out = do(t, mux, "POST", PathVersions+"/2/promote", "", map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, []uint64{1, 2, 3}, n.got, "every write is announced, the shadow one too")
}

func TestRejectShadowCandidate(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	mux, n := newAPI(t, bkt)
	code, out := do(t, mux, "PUT", PathConfig, doc1, map[string]string{"If-Match": "0"})
	require.Equal(t, http.StatusOK, code, out)
	code, out = do(t, mux, "PUT", PathConfig+"?mode=shadow", doc2, map[string]string{"If-Match": "1"})
	require.Equal(t, http.StatusOK, code, out)
	code, out = do(t, mux, "GET", PathConfig, "", nil)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 2, out["data"].(map[string]any)["shadow"].(map[string]any)["version"], "version 2 is staged")

	cases := []struct {
		name, path, origin string
		want               int
		wantErr            string
	}{
		{name: "enforce version", path: PathVersions + "/1/reject", want: http.StatusBadRequest, wantErr: "only shadow candidates are rejected"},
		{name: "unknown version", path: PathVersions + "/7/reject", want: http.StatusNotFound},
		{name: "cross-origin browser", path: PathVersions + "/2/reject", origin: "https://evil.example", want: http.StatusForbidden},
		{name: "the candidate", path: PathVersions + "/2/reject", want: http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{HeaderUser: "bob", HeaderMessage: "saves too little"}
			if tc.origin != "" {
				hdr["Origin"], hdr["Sec-Fetch-Site"] = tc.origin, "cross-site"
			}
			code, out := do(t, mux, "POST", tc.path, "", hdr)
			require.Equal(t, tc.want, code, out)
			if tc.wantErr != "" {
				require.Contains(t, out["error"], tc.wantErr)
			}
		})
	}
	require.Equal(t, []uint64{1, 2, 2}, n.got, "the nodes are told to read the store again")
	code, out = do(t, mux, "GET", PathConfig, "", nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Nil(t, out["data"].(map[string]any)["shadow"], "a rejected candidate is not staged")
	require.EqualValues(t, 1, out["data"].(map[string]any)["version"].(map[string]any)["version"], "the active version stays")
	code, out = do(t, mux, "GET", PathVersions, "", nil)
	require.Equal(t, http.StatusOK, code, out)
	rej := out["data"].(map[string]any)["rejected"].(map[string]any)["2"].(map[string]any)
	require.Equal(t, "bob", rej["by"])
	require.Equal(t, "saves too little", rej["reason"])

	code, out = do(t, mux, "GET", PathVersions+"/2/proposal", "", nil)
	require.Equal(t, http.StatusNotFound, code, out)
	require.NoError(t, govstore.New(bkt).SaveProposal(t.Context(), 2, []byte(`{"suggestion":{"id":"x"}}`)))
	code, out = do(t, mux, "GET", PathVersions+"/2/proposal", "", nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "x", out["data"].(map[string]any)["suggestion"].(map[string]any)["id"])
}
