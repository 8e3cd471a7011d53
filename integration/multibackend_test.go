package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/promgov/promgov/internal/testcerts"
	"github.com/stretchr/testify/require"
)

// The credentials of the authenticated backend: bcrypt (cost 4) of
// backendPassword, as Prometheus's web configuration wants it.
const (
	backendUser     = "promgov"
	backendPassword = "promgov-test-secret"
	backendHash     = "$2a$04$nS6dDs9LDToVAmf6eSJfnOinSmK5bTWIwC0F.MLD7vFXMiv7llubC"
)

// writeTLSFiles writes a CA and a server certificate for 127.0.0.1 signed
// by it into dir: ca.pem, server.pem, server-key.pem.
func writeTLSFiles(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	ca, err := testcerts.NewCA(dir, "promgov-test")
	require.NoError(t, err)
	pair, err := ca.Server("server")
	require.NoError(t, err)
	for from, to := range map[string]string{ca.CertFile: "ca.pem", pair.CertFile: "server.pem", pair.KeyFile: "server-key.pem"} {
		require.NoError(t, os.Rename(from, filepath.Join(dir, to)))
	}
	return ca.Pool()
}

// basicAuth adds credentials to every request.
type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

// startSecureBackend starts Prometheus 3.16 serving HTTPS only, with basic
// auth on every endpoint (remote write included), certificates in dir.
func startSecureBackend(t *testing.T, dir string) *backend {
	t.Helper()
	pool := writeTLSFiles(t, dir)
	web := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %q\n",
		filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), backendUser, backendHash)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "web.yml"), []byte(web), 0o600))
	addr := freeAddr(t)
	p := startProcess(t, "prometheus-tls", prometheus, append(prometheusArgs(t, dir, addr),
		"--web.config.file="+filepath.Join(dir, "web.yml"),
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
		"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
	)...)
	client := &http.Client{Transport: basicAuth{backendUser, backendPassword,
		&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	be := &backend{proc: p, addr: addr, client: client, scheme: "https"}
	waitReadyVia(t, p, client, be.base()+"/-/ready")
	return be
}

// TestBackendsAuthenticatedAndIndependent forwards to two backends at
// once: a Prometheus that accepts remote write only over TLS with basic
// auth (the credentials, a password file and the CA come from the
// ingester's configuration file), and one that is down until the load is
// over. The first receives every acknowledged sample while the second is
// down; the second, once started, receives them all too.
func TestBackendsAuthenticatedAndIndependent(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	dir := t.TempDir()
	secure := startSecureBackend(t, dir)

	// The credentials are enforced: without them, no remote write.
	req, err := http.NewRequest(http.MethodPost, secure.writeURL(), bytes.NewReader(nil))
	require.NoError(t, err)
	resp, err := secure.client.Transport.(basicAuth).next.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "remote write without credentials")

	laterDir, laterAddr := t.TempDir(), freeAddr(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "password"), []byte(backendPassword+"\n"), 0o600))
	cfgFile := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`backends:
  - name: secure
    url: %s
    basic_auth: {username: %s, password_file: password}
    tls_config: {ca_file: ca.pem}
  - name: later
    url: http://%s/api/v1/write
`, secure.writeURL(), backendUser, laterAddr)), 0o600))

	wc := startWALCluster(t, nil, "", 1, "--config.file="+cfgFile)
	ing := wc.ingesters[0]
	loadgenIn := func(be *backend) func(T) int {
		return func(t T) int { return samplesIn(be.rawSamples(t, `{__name__=~"loadgen_.+"}`)) }
	}
	var out bytes.Buffer
	const rate, requests = 2000, 300 // 15 s of load
	lg := wc.startLoadgen(&out, rate, requests)
	rep := waitLoadgen(t, lg, &out, 120*time.Second)
	found := waitAllStored(t, rep, loadgenIn(secure))
	sent := func(name string) float64 {
		return metricSum(ing.url("/metrics"), `promgov_forward_sent_samples_total{backend="`+name+`"`)
	}
	require.Zero(t, sent("later"), "nothing reached the backend that is down")
	require.Positive(t, metricSum(ing.url("/metrics"), `promgov_forward_retries_total{backend="later"`))
	t.Logf("while %q was down: loadgen acknowledged %d samples, the TLS + basic auth backend holds %d (forwarder sent %.0f)",
		"later", rep.AcceptedSamples, found, sent("secure"))

	// The backend that was down starts: it gets everything from the WAL.
	later := startPrometheusAt(t, "prometheus-later", prometheus, laterDir, laterAddr,
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
		"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request")
	start := time.Now()
	foundLater := waitAllStored(t, rep, loadgenIn(later))
	t.Logf("%q started: it received all %d acknowledged samples within %.1fs; the secure backend still holds %d",
		"later", foundLater, time.Since(start).Seconds(), loadgenIn(secure)(t))
	require.Equal(t, found, loadgenIn(secure)(t))
}
