package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/internal/testcerts"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// secureEnv is the certificates, keys and configuration files of a
// cluster with every security feature on: HTTPS with client certificates
// and identities on both binaries, mutual TLS on gRPC, encrypted gossip.
type secureEnv struct {
	t   *testing.T
	dir string
	ca  *testcerts.CA
	// server is every member's certificate (HTTP and gRPC servers, and the
	// ingesters' client certificate towards their peers); member is the
	// distributors' gRPC client certificate; ops is an admin's HTTP client
	// certificate.
	server, member, ops          testcerts.Pair
	webCfg, authCfg, gossip, cfg string
	readerToken                  string
}

// Credentials of the identities in the auth configuration.
const (
	writerAUser, writerAPass = "writer-a", "pass-a"
	writerBUser, writerBPass = "writer-b", "pass-b"
	limitedTenant            = "limited"
	freeTenant               = "free"
	// limitedRate is the cluster-wide limit of limitedTenant; each of two
	// distributors admits half.
	limitedRate  = 2000
	limitedBurst = 400
)

func newSecureEnv(t *testing.T) *secureEnv {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "promgov-test")
	require.NoError(t, err)
	e := &secureEnv{t: t, dir: dir, ca: ca}
	e.server, err = ca.Server("member-server")
	require.NoError(t, err)
	e.member, err = ca.Client("distributor")
	require.NoError(t, err)
	e.ops, err = ca.Client("ops")
	require.NoError(t, err)

	e.webCfg = e.write("web.yml", fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
  client_auth_type: VerifyClientCertIfGiven
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
`, e.server.CertFile, e.server.KeyFile, ca.CertFile))
	hash := func(p string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		require.NoError(t, err)
		return string(h)
	}
	e.readerToken = randomB64(t, 24)
	e.write("reader-a.token", e.readerToken+"\n")
	e.authCfg = e.write("auth.yml", fmt.Sprintf(`identities:
  - name: writer-a
    basic_auth_user: %s
    password_hash: %q
    roles: [write]
    tenants: [a]
  - name: writer-b
    basic_auth_user: %s
    password_hash: %q
    roles: [write]
    tenants: [b]
  - name: reader-a
    bearer_token_file: reader-a.token
    roles: [read]
    tenants: [a]
  - name: ops
    client_cert_cn: ops
    roles: [admin]
    tenants: ["*"]
`, writerAUser, hash(writerAPass), writerBUser, hash(writerBPass)))
	e.gossip = e.write("gossip.key", randomB64(t, 32)+"\n")
	e.cfg = e.write("promgov.yml", fmt.Sprintf(`rate_limits:
  tenants:
    %s:
      samples_per_second: %d
      burst: %d
`, limitedTenant, limitedRate, limitedBurst))
	return e
}

func randomB64(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func (e *secureEnv) write(name, content string) string {
	path := filepath.Join(e.dir, name)
	require.NoError(e.t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// client is an HTTPS client trusting the test CA, presenting pair unless
// it is the zero Pair.
func (e *secureEnv) client(pair testcerts.Pair) *http.Client {
	cfg, err := e.ca.ClientTLS(pair)
	require.NoError(e.t, err)
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 16}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// common are the flags of both binaries.
func (e *secureEnv) common(n *node) []string {
	return []string{
		"--config.file=" + e.cfg,
		"--web.listen-address=" + n.webAddr,
		"--web.config.file=" + e.webCfg,
		"--auth.config-file=" + e.authCfg,
		"--memberlist.bind-address=" + n.gossipAddr,
		"--memberlist.node-name=" + n.name,
		"--memberlist.encryption-key-file=" + e.gossip,
		"--log.level=debug",
	}
}

// secureCluster is a backend (HTTPS, basic auth), two distributors and
// one ingester.
type secureCluster struct {
	env          *secureEnv
	backend      *backend
	dists        []*node
	ingester     *node
	ops, anon    *http.Client
	readerClient *http.Client
}

func startSecureCluster(t *testing.T, distFlags ...string) *secureCluster {
	t.Helper()
	requireIntegration(t)
	e := newSecureEnv(t)
	// The backend serves HTTPS with basic auth too: TLS on every hop.
	bdir := t.TempDir()
	c := &secureCluster{env: e, backend: startSecureBackend(t, bdir), ops: e.client(e.ops), anon: e.client(testcerts.Pair{})}
	require.NoError(t, os.WriteFile(filepath.Join(bdir, "password"), []byte(backendPassword+"\n"), 0o600))
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, `backends:
  - name: secure
    url: %s
    basic_auth: {username: %s, password_file: %s}
    tls_config: {ca_file: %s}
`, c.backend.writeURL(), backendUser, filepath.Join(bdir, "password"), filepath.Join(bdir, "ca.pem"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	c.readerClient = c.anon
	for i := range 2 {
		n := &node{name: fmt.Sprintf("distributor-%d", i), webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
		args := append(e.common(n),
			"--distributor.push-timeout=5s",
			"--ingester.client.tls-enabled",
			"--ingester.client.tls-cert-path="+e.member.CertFile,
			"--ingester.client.tls-key-path="+e.member.KeyFile,
			"--ingester.client.tls-ca-path="+e.ca.CertFile,
		)
		if i > 0 {
			args = append(args, "--memberlist.join="+c.dists[0].gossipAddr)
		}
		n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"), append(args, distFlags...)...)
		c.dists = append(c.dists, n)
	}
	in := &node{name: "ingester-1", webAddr: freeAddr(t), gossipAddr: freeAddr(t), grpcAddr: freeAddr(t), walDir: filepath.Join(t.TempDir(), "wal")}
	in.proc = startProcess(t, in.name, filepath.Join(binDir, "ingester"), append(e.common(in),
		"--grpc.listen-address="+in.grpcAddr,
		"--grpc.tls-cert-path="+e.server.CertFile,
		"--grpc.tls-key-path="+e.server.KeyFile,
		"--grpc.tls-ca-path="+e.ca.CertFile,
		"--ingester.client.tls-enabled",
		"--ingester.client.tls-cert-path="+e.server.CertFile,
		"--ingester.client.tls-key-path="+e.server.KeyFile,
		"--ingester.client.tls-ca-path="+e.ca.CertFile,
		"--memberlist.join="+c.dists[0].gossipAddr,
		"--wal.dir="+in.walDir,
		"--forward.batch-send-deadline=200ms",
		"--ingester.leave-drain-period=1s",
	)...)
	c.ingester = in
	waitReadyVia(t, in.proc, c.anon, "https://"+in.webAddr+"/-/ready")
	for _, d := range c.dists {
		waitReadyVia(t, d.proc, c.anon, "https://"+d.webAddr+"/-/ready")
	}
	// Both distributors see each other (the rate limit is shared by two).
	for _, d := range c.dists {
		eventually(t, func(ct *assert.CollectT) bool {
			return c.distributorsSeen(ct, d) == 2
		}, 30*time.Second, 100*time.Millisecond, "%s never saw both distributors", d.name)
	}
	return c
}

// distributorsSeen counts the ACTIVE distributors in n's ring.
func (c *secureCluster) distributorsSeen(t T, n *node) int {
	var data struct {
		Members []ringMember `json:"members"`
	}
	apiGetVia(t, c.ops, "https://"+n.webAddr, "/promgov/api/v1/status/ring", nil, &data)
	k := 0
	for _, m := range data.Members {
		if m.Role == "distributor" && m.State == "ACTIVE" {
			k++
		}
	}
	return k
}

// rwBody is a snappy RW 1.0 request of n series named name with one sample
// each at ts.
func rwBody(t T, name string, n int, ts time.Time) []byte {
	var req prompb.WriteRequest
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "i", Value: fmt.Sprint(i)}},
			Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: float64(i)}},
		})
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// send posts a RW 1.0 body to url through client with the given headers,
// and returns the status, headers and body of the answer.
func send(t T, client *http.Client, method, url string, body []byte, set func(*http.Request)) (int, http.Header, string) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentTypeV1)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if set != nil {
		set(req)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func withBasicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func withTenant(set func(*http.Request), tenant string) func(*http.Request) {
	return func(r *http.Request) {
		if set != nil {
			set(r)
		}
		r.Header.Set("X-Scope-OrgID", tenant)
	}
}

// TestSecurityAttacks runs every attack of docs/security.md's table
// against a cluster with TLS, identities, mutual gRPC TLS and encrypted
// gossip on, and checks that legitimate traffic still gets through.
func TestSecurityAttacks(t *testing.T) {
	t.Parallel()
	c := startSecureCluster(t, "--web.read-header-timeout=3s", "--web.max-connections=512")
	e := c.env
	d := c.dists[0]
	writeURL := "https://" + d.webAddr + "/api/v1/write"
	now := time.Now()

	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		code, _, _ := send(t, http.DefaultClient, http.MethodPost, "http://"+d.webAddr+"/api/v1/write", rwBody(t, "sec_plain", 1, now), nil)
		require.Equal(t, http.StatusBadRequest, code)
	})
	t.Run("write without credentials is 401", func(t *testing.T) {
		code, hdr, body := send(t, c.anon, http.MethodPost, writeURL, rwBody(t, "sec_anon", 1, now), nil)
		require.Equal(t, http.StatusUnauthorized, code, body)
		require.NotEmpty(t, hdr.Get("WWW-Authenticate"))
		require.Equal(t, "nosniff", hdr.Get("X-Content-Type-Options"), "the web configuration's headers")
	})
	t.Run("wrong password is 401", func(t *testing.T) {
		code, _, body := send(t, c.anon, http.MethodPost, writeURL, rwBody(t, "sec_wrong", 1, now), withBasicAuth(writerAUser, "guess"))
		require.Equal(t, http.StatusUnauthorized, code, body)
	})
	t.Run("writer A writes as A, and by default", func(t *testing.T) {
		code, _, body := send(t, c.anon, http.MethodPost, writeURL, rwBody(t, "sec_a_written", 5, now), withTenant(withBasicAuth(writerAUser, writerAPass), "a"))
		require.Equal(t, http.StatusNoContent, code, body)
		code, _, body = send(t, c.anon, http.MethodPost, writeURL, rwBody(t, "sec_a_default", 5, now), withBasicAuth(writerAUser, writerAPass))
		require.Equal(t, http.StatusNoContent, code, body)
		// Through mutual TLS to the ingester and on to the backend.
		eventually(t, func(ct *assert.CollectT) bool {
			return c.backend.count(ct, `count({__name__=~"sec_a_.*"})`) == 10
		}, 30*time.Second, 200*time.Millisecond, "the writes of writer A never reached the backend")
		eventually(t, func(ct *assert.CollectT) bool {
			var out any
			apiGetVia(ct, c.ops, "https://"+d.webAddr, "/promgov/api/v1/cardinality/metrics", map[string][]string{"tenant": {"a"}}, &out)
			return strings.Contains(fmt.Sprint(out), "sec_a_default")
		}, 30*time.Second, 200*time.Millisecond, "a write without a tenant header did not count for the identity's tenant a")
	})
	t.Run("writer A cannot write as B", func(t *testing.T) {
		code, _, body := send(t, c.anon, http.MethodPost, writeURL, rwBody(t, "sec_a_as_b", 1, now), withTenant(withBasicAuth(writerAUser, writerAPass), "b"))
		require.Equal(t, http.StatusForbidden, code, body)
	})
	cardURL := func(tenant string) string {
		return "https://" + d.webAddr + "/promgov/api/v1/cardinality/metrics?tenant=" + tenant
	}
	get := func(t *testing.T, client *http.Client, url string, set func(*http.Request)) (int, string) {
		code, _, body := send(t, client, http.MethodGet, url, nil, set)
		return code, body
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+e.readerToken) }
	t.Run("writer A cannot read B's analytics", func(t *testing.T) {
		code, body := get(t, c.anon, cardURL("b"), withBasicAuth(writerAUser, writerAPass))
		require.Equal(t, http.StatusForbidden, code, body)
	})
	t.Run("reader A reads A, not B, not the cluster totals", func(t *testing.T) {
		code, body := get(t, c.anon, cardURL("a"), bearer)
		require.Equal(t, http.StatusOK, code, body)
		code, body = get(t, c.anon, cardURL("b"), bearer)
		require.Equal(t, http.StatusForbidden, code, body)
		code, body = get(t, c.anon, "https://"+d.webAddr+"/promgov/api/v1/usage/metrics", withTenant(bearer, "b"))
		require.Equal(t, http.StatusForbidden, code, body)
		code, body = get(t, c.anon, "https://"+d.webAddr+"/metrics", bearer)
		require.Equal(t, http.StatusForbidden, code, body)
		// On the ingester too.
		code, body = get(t, c.anon, "https://"+c.ingester.webAddr+"/promgov/api/v1/cardinality/metrics?tenant=b", bearer)
		require.Equal(t, http.StatusForbidden, code, body)
	})
	t.Run("reader cannot reload, admin can, both audited", func(t *testing.T) {
		code, body := get(t, c.anon, "https://"+d.webAddr+"/-/healthy", nil)
		require.Equal(t, http.StatusOK, code, body)
		code, _, body = send(t, c.anon, http.MethodPost, "https://"+d.webAddr+"/-/reload", nil, bearer)
		require.Equal(t, http.StatusForbidden, code, body)
		code, _, body = send(t, c.anon, http.MethodPost, "https://"+c.ingester.webAddr+"/-/reload", nil, bearer)
		require.Equal(t, http.StatusForbidden, code, body)
		code, _, body = send(t, c.ops, http.MethodPost, "https://"+d.webAddr+"/-/reload", nil, nil)
		require.Equal(t, http.StatusOK, code, body)
		metrics := "https://" + d.webAddr + "/metrics"
		require.Equal(t, 1.0, metricSumVia(c.ops, metrics, `promgov_audit_events_total{action="reload",outcome="denied"`))
		require.Equal(t, 1.0, metricSumVia(c.ops, metrics, `promgov_audit_events_total{action="reload",outcome="success"`))
		log, err := os.ReadFile(d.proc.log)
		require.NoError(t, err)
		require.Contains(t, string(log), `action=reload identity=reader-a`)
		require.Contains(t, string(log), `action=reload identity=ops source=`)
	})
	t.Run("reader A's web UI shows tenant A only", func(t *testing.T) {
		uiTenantIsolation(t, c, d)
	})
	t.Run("candidate rules test needs admin", func(t *testing.T) {
		body := []byte(`{"series":[{"series":"up{job=\"x\"}"}],"rules":"rules: []"}`)
		code, _, out := send(t, c.anon, http.MethodPost, "https://"+d.webAddr+"/promgov/api/v1/rules/test", body, withTenant(withBasicAuth(writerAUser, writerAPass), "a"))
		require.Equal(t, http.StatusForbidden, code, out)
	})
	t.Run("rogue gRPC clients cannot push to an ingester", func(t *testing.T) {
		push := func(creds credentials.TransportCredentials) error {
			conn, err := grpc.NewClient(c.ingester.grpcAddr, grpc.WithTransportCredentials(creds))
			require.NoError(t, err)
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = ingesterv1.NewIngesterServiceClient(conn).Push(ctx, &ingesterv1.PushRequest{Tenant: "a"})
			return err
		}
		noCert, err := e.ca.ClientTLS(testcerts.Pair{})
		require.NoError(t, err)
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext":                                insecure.NewCredentials(),
			"TLS without a client certificate":         credentials.NewTLS(noCert),
			"TLS, server not verified, no certificate": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // the attacker's choice
		} {
			err := push(creds)
			require.Error(t, err, name)
			require.Equal(t, codes.Unavailable, status.Code(err), "%s: %v", name, err)
		}
		member, err := e.ca.ClientTLS(e.member)
		require.NoError(t, err)
		require.NotEqual(t, codes.Unavailable, status.Code(push(credentials.NewTLS(member))), "a cluster member's certificate is accepted")
	})
	t.Run("a node with the wrong gossip key cannot join", func(t *testing.T) {
		bad := e.write("wrong.key", randomB64(t, 32))
		n := &node{name: "rogue-ingester", webAddr: freeAddr(t), gossipAddr: freeAddr(t), grpcAddr: freeAddr(t), walDir: filepath.Join(t.TempDir(), "wal")}
		args := e.common(n)
		for i, a := range args {
			if strings.HasPrefix(a, "--memberlist.encryption-key-file=") {
				args[i] = "--memberlist.encryption-key-file=" + bad
			}
		}
		n.proc = startProcess(t, n.name, filepath.Join(binDir, "ingester"), append(args,
			"--grpc.listen-address="+n.grpcAddr,
			"--memberlist.join="+d.gossipAddr,
			"--wal.dir="+n.walDir,
		)...)
		eventually(t, func(ct *assert.CollectT) bool {
			return metricSumVia(c.ops, "https://"+n.webAddr+"/metrics", `promgov_ring_join_attempts_total{result="failure"`) >= 3
		}, 30*time.Second, 200*time.Millisecond, "the rogue node kept joining?")
		for _, dd := range c.dists {
			var data struct {
				Members []ringMember `json:"members"`
			}
			apiGetVia(t, c.ops, "https://"+dd.webAddr, "/promgov/api/v1/status/ring", nil, &data)
			for _, m := range data.Members {
				require.NotEqual(t, n.name, m.Name, "%s let a node with the wrong key join", dd.name)
			}
		}
	})
	t.Run("slowloris: trickling connections do not stop writes", func(t *testing.T) {
		slowloris(t, c, d)
	})
}

// slowloris opens hundreds of TLS connections to d that send a request's
// headers one byte a second, and checks that writes from a real sender
// keep succeeding meanwhile and that d closes the slow connections once
// their header timeout (3s here) passes.
func slowloris(t *testing.T, c *secureCluster, d *node) {
	const conns = 300
	writeURL := "https://" + d.webAddr + "/api/v1/write"
	writer := c.env.client(testcerts.Pair{})
	writeOnce := func(i int) (int, time.Duration) {
		start := time.Now()
		code, _, _ := send(t, writer, http.MethodPost, writeURL, rwBody(t, "sec_slowloris", 20, time.Now()), withBasicAuth(writerAUser, writerAPass))
		return code, time.Since(start)
	}
	var before []time.Duration
	for i := range 20 {
		code, lat := writeOnce(i)
		require.Equal(t, http.StatusNoContent, code)
		before = append(before, lat)
	}

	tlsCfg, err := c.env.ca.ClientTLS(testcerts.Pair{})
	require.NoError(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened, closedByServer := 0, 0
	// trickle opens one connection and sends a byte a second until the
	// server closes it (true) or the test stops (false).
	trickle := func() bool {
		conn, err := tls.Dial("tcp", d.webAddr, tlsCfg)
		if err != nil {
			return true
		}
		defer conn.Close()
		mu.Lock()
		opened++
		mu.Unlock()
		msg := "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := 0; i < len(msg); i++ {
			if _, err := conn.Write([]byte{msg[i]}); err != nil {
				mu.Lock()
				closedByServer++
				mu.Unlock()
				return true
			}
			select {
			case <-stop:
				return false
			case <-time.After(time.Second):
			}
		}
		return false
	}
	// Like a real attacker, each one reconnects when the server closes it,
	// so hundreds of connections trickle all along.
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for trickle() {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	eventually(t, func(*assert.CollectT) bool {
		mu.Lock()
		defer mu.Unlock()
		return opened >= conns
	}, 30*time.Second, 100*time.Millisecond, "the slow connections did not all open")

	var during []time.Duration
	pace := time.NewTicker(200 * time.Millisecond) // spread the writes over the attack (6 s, two header timeouts)
	defer pace.Stop()
	for i := range 30 {
		<-pace.C
		code, lat := writeOnce(i)
		require.Equal(t, http.StatusNoContent, code, "a write failed during the slowloris attack")
		during = append(during, lat)
	}
	// The server closes every trickling connection after its header
	// timeout: the next byte written fails.
	eventually(t, func(*assert.CollectT) bool {
		mu.Lock()
		defer mu.Unlock()
		return closedByServer >= conns
	}, 60*time.Second, 200*time.Millisecond, "the server kept slow connections open past the header timeout")
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("slowloris: %d trickling TLS connections (%d opened, %d closed by the server's header timeout); write latency p50/max before %v/%v, during %v/%v",
		conns, opened, closedByServer, pct(before, 50), pct(before, 100), pct(during, 50), pct(during, 100))
	mu.Unlock()
}

// pct is the p-th percentile of ds (sorted in place).
func pct(ds []time.Duration, p int) time.Duration {
	slices.Sort(ds)
	i := (len(ds) - 1) * p / 100
	return ds[i].Round(100 * time.Microsecond)
}

// TestSecurityRateLimit: a tenant sending twice its limit through two
// distributors gets 429 with Retry-After for the excess and is admitted at
// about its limit, while another tenant's writes all succeed.
func TestSecurityRateLimit(t *testing.T) {
	c := startSecureCluster(t)
	const (
		size     = 100                   // samples per request
		interval = 50 * time.Millisecond // per distributor: 2000 samples/s offered, twice its share
		duration = 10 * time.Second
	)
	type result struct {
		admitted, limited, other int
		retryAfter               bool
	}
	results := make([]result, len(c.dists))
	var freeFailed []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i, d := range c.dists {
		wg.Add(2)
		url := "https://" + d.webAddr + "/api/v1/write"
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Since(start) < duration {
				code, hdr, _ := send(t, c.ops, http.MethodPost, url, rwBody(t, "sec_limited", size, time.Now()), withTenant(nil, limitedTenant))
				mu.Lock()
				switch code {
				case http.StatusNoContent:
					results[i].admitted += size
				case http.StatusTooManyRequests:
					results[i].limited++
					results[i].retryAfter = results[i].retryAfter || hdr.Get("Retry-After") != ""
				default:
					results[i].other++
				}
				mu.Unlock()
				<-tick.C
			}
		}()
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * interval)
			defer tick.Stop()
			for time.Since(start) < duration {
				code, _, body := send(t, c.ops, http.MethodPost, url, rwBody(t, "sec_free", size, time.Now()), withTenant(nil, freeTenant))
				if code != http.StatusNoContent {
					mu.Lock()
					freeFailed = append(freeFailed, fmt.Sprintf("%d %s", code, body))
					mu.Unlock()
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	require.Empty(t, freeFailed, "the other tenant's writes must all succeed")
	total := 0
	for i, r := range results {
		require.Zero(t, r.other, "%s answered something other than 204 or 429", c.dists[i].name)
		require.Positive(t, r.limited, "%s never limited a tenant at twice its limit", c.dists[i].name)
		require.True(t, r.retryAfter, "429 without Retry-After")
		share := float64(r.admitted-limitedBurst) / elapsed
		t.Logf("rate limit: %s admitted %.0f samples/s after its burst (its share of %d: %d), %d requests limited",
			c.dists[i].name, share, limitedRate, limitedRate/len(c.dists), r.limited)
		total += r.admitted - limitedBurst
	}
	rate := float64(total) / elapsed
	t.Logf("rate limit: tenant %s offered ~%d samples/s, admitted %.0f samples/s cluster-wide, configured %d (%.1f%%)",
		limitedTenant, 2*limitedRate, rate, limitedRate, 100*rate/limitedRate)
	require.InDelta(t, limitedRate, rate, 0.2*limitedRate, "admitted rate far from the configured limit")
	metrics := "https://" + c.dists[0].webAddr + "/metrics"
	require.Positive(t, metricSumVia(c.ops, metrics, `promgov_distributor_rate_limited_samples_total{tenant="limited"`))
	require.Zero(t, metricSumVia(c.ops, metrics, `promgov_distributor_rate_limited_samples_total{tenant="free"`))
}
