package web

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/testcerts"
)

// TestWebConfigFile serves TLS with required client certificates from an
// exporter-toolkit web configuration: a client without a certificate or
// without TLS gets nothing, one with a certificate the CA signed is served.
func TestWebConfigFile(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "test")
	require.NoError(t, err)
	srvPair, err := ca.Server("server")
	require.NoError(t, err)
	cliPair, err := ca.Client("client")
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(`tls_server_config:
  cert_file: `+srvPair.CertFile+`
  key_file: `+srvPair.KeyFile+`
  client_ca_file: `+ca.CertFile+`
  client_auth_type: RequireAndVerifyClientCert
http_server_config:
  headers:
    X-Frame-Options: deny
`), 0o600))

	cfg := Config{ListenAddress: "127.0.0.1:0", ShutdownTimeout: 5e9, ConfigFile: webCfg, MaxConnections: 8}
	require.NoError(t, cfg.Validate())
	srv := startServer(t, cfg)

	url := "https://" + srv.Addr() + "/-/healthy"
	noCert, err := ca.ClientTLS(testcerts.Pair{})
	require.NoError(t, err)
	withCert, err := ca.ClientTLS(cliPair)
	require.NoError(t, err)
	get := func(c *http.Client, url string) (*http.Response, error) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return resp, err
	}
	_, err = get(&http.Client{Transport: &http.Transport{TLSClientConfig: noCert}}, url)
	require.Error(t, err, "a client without a certificate must not be served")
	resp, err := get(http.DefaultClient, "http://"+srv.Addr()+"/-/healthy")
	if err == nil {
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP on a TLS port")
	}
	tr := &http.Transport{TLSClientConfig: withCert}
	defer tr.CloseIdleConnections()
	resp, err = get(&http.Client{Transport: tr}, url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "deny", resp.Header.Get("X-Frame-Options"))
}

func TestValidateWebConfigFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(bad, []byte("tls_server_config:\n  cert_file: /nonexistent\n"), 0o600))
	cfg := Config{ListenAddress: "127.0.0.1:0", ShutdownTimeout: 5e9, ConfigFile: bad}
	require.ErrorContains(t, cfg.Validate(), "web.config_file")
}
