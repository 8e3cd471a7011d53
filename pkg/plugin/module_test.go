package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestModuleFromURL: a module given as a URL is downloaded at load and
// pinned by sha256; a wrong digest, an error status, a body that is not
// WebAssembly and one over the size limit are refused with the reason.
func TestModuleFromURL(t *testing.T) {
	code, err := os.ReadFile(builder.Build(t, requireTeamPkg))
	require.NoError(t, err)
	sum := sha256.Sum256(code)
	digest := hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/requireteam.wasm":
			_, _ = w.Write(code)
		case "/script.wasm":
			_, _ = w.Write([]byte("#!/bin/sh\n"))
		case "/huge.wasm":
			w.Header().Set("Content-Length", "1073741824")
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	p := loadT(t, "requireteam", Config{Module: srv.URL + "/requireteam.wasm", SHA256: digest, Config: `{"teams":["core"]}`}, nil)
	out, err := p.Eval(context.Background(), []Input{{Labels: labels.FromStrings("__name__", "up")}}, nil)
	require.NoError(t, err)
	require.Equal(t, Drop, out[0].Action)

	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"wrong digest":    {Config{Module: srv.URL + "/requireteam.wasm", SHA256: strings.Repeat("0", 64)}, "the configuration pins 0000"},
		"not found":       {Config{Module: srv.URL + "/missing.wasm"}, "404 Not Found"},
		"not WebAssembly": {Config{Module: srv.URL + "/script.wasm"}, "is not a WebAssembly module"},
		"over the limit":  {Config{Module: srv.URL + "/huge.wasm"}, "is over 64 MiB"},
		"bad digest":      {Config{Module: srv.URL + "/requireteam.wasm", SHA256: "abc"}, "sha256: \"abc\" is not 64 hex digits"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(context.Background(), "requireteam", tc.cfg, nil, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
