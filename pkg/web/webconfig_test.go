package web

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/promgov/promgov/internal/testcerts"
)

// TestWebConfigChangesApply: the parsed web configuration is cached, yet a
// rotated certificate, a changed header and a changed basic auth user all
// apply to new connections and requests without a restart, as with
// exporter-toolkit's per-request reading.
func TestWebConfigChangesApply(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "test")
	require.NoError(t, err)
	first, err := ca.Server("first")
	require.NoError(t, err)
	second, err := ca.Server("second")
	require.NoError(t, err)
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "live.crt"), filepath.Join(dir, "live.key")
	copyFile(t, first.CertFile, certFile)
	copyFile(t, first.KeyFile, keyFile)
	webCfg := filepath.Join(dir, "web.yml")
	writeWebConfig := func(header, user string) {
		require.NoError(t, os.WriteFile(webCfg, []byte(`tls_server_config:
  cert_file: live.crt
  key_file: live.key
http_server_config:
  headers:
    X-Frame-Options: `+header+`
basic_auth_users:
  `+user+`: `+string(hash)+`
`), 0o600))
	}
	writeWebConfig("deny", "alice")

	cfg := Config{ListenAddress: "127.0.0.1:0", ShutdownTimeout: 5e9, ConfigFile: webCfg}
	require.NoError(t, cfg.Validate())
	srv := startServer(t, cfg)

	// A fresh connection per request, so each sees the served certificate.
	var servedCN string
	do := func(user string) *http.Response {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest(http.MethodGet, "https://"+srv.Addr()+"/-/healthy", nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, "secret")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		servedCN = resp.TLS.PeerCertificates[0].Subject.CommonName
		return resp
	}
	resp := do("alice")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "deny", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "first", servedCN)
	require.Equal(t, http.StatusUnauthorized, do("bob").StatusCode)

	copyFile(t, second.CertFile, certFile)
	copyFile(t, second.KeyFile, keyFile)
	writeWebConfig("sameorigin", "bob")
	// Modification times may be coarse: make sure they differ.
	later := time.Now().Add(2 * time.Second)
	for _, f := range []string{certFile, keyFile, webCfg} {
		require.NoError(t, os.Chtimes(f, later, later))
	}
	require.Eventually(t, func() bool {
		resp := do("bob")
		return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Frame-Options") == "sameorigin" && servedCN == "second"
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, do("alice").StatusCode, "a removed user is refused")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to+".tmp", b, 0o600))
	require.NoError(t, os.Rename(to+".tmp", to))
}
