package clustertls

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/promgov/promgov/internal/testcerts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMutualTLS: a server requiring client certificates answers a client
// presenting one the CA signed, and refuses a client without one, a
// client with a certificate of another CA, and a plaintext client.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "cluster")
	require.NoError(t, err)
	other, err := testcerts.NewCA(t.TempDir(), "other")
	require.NoError(t, err)
	srvPair, err := ca.Server("ingester")
	require.NoError(t, err)
	member, err := ca.Client("distributor")
	require.NoError(t, err)
	stranger, err := other.Client("rogue")
	require.NoError(t, err)

	sc := ServerConfig{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, CAFile: ca.CertFile, ClientAuth: ClientAuthRequireAndVerify}
	require.NoError(t, sc.Validate())
	addr := serveHealth(t, sc)

	for name, tc := range map[string]struct {
		cfg ClientConfig
		ok  bool
	}{
		"member":                    {ClientConfig{Enabled: true, CertFile: member.CertFile, KeyFile: member.KeyFile, CAFile: ca.CertFile}, true},
		"no certificate":            {ClientConfig{Enabled: true, CAFile: ca.CertFile}, false},
		"certificate of another CA": {ClientConfig{Enabled: true, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile, CAFile: ca.CertFile}, false},
		"plaintext":                 {ClientConfig{}, false},
		"server name not in the server's certificate": {ClientConfig{Enabled: true, CertFile: member.CertFile, KeyFile: member.KeyFile, CAFile: ca.CertFile, ServerName: "elsewhere.example"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			dial, err := tc.cfg.DialOption()
			require.NoError(t, err)
			err = healthCheck(t, addr, dial)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"cert without key":        {(&ServerConfig{CertFile: "c"}).Validate(), "set both"},
		"verify without CA":       {(&ServerConfig{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequireAndVerify}).Validate(), "tls_ca_path"},
		"unknown policy":          {(&ServerConfig{CertFile: "c", KeyFile: "k", ClientAuth: "maybe"}).Validate(), "maybe"},
		"client cert not enabled": {(&ClientConfig{CertFile: "c"}).Validate(), "tls-enabled"},
		"client key missing":      {(&ClientConfig{Enabled: true, CertFile: "c"}).Validate(), "set both"},
	} {
		t.Run(name, func(t *testing.T) { require.ErrorContains(t, tc.err, tc.want) })
	}
}

// TestRotation: on a live server and a live client configuration, the
// certificates, keys and CAs are replaced in their files (a move to a new
// CA, the hardest rotation); new connections use the new files without a
// restart, and a client still holding only the old material is refused.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	oldCA, err := testcerts.NewCA(t.TempDir(), "old")
	require.NoError(t, err)
	newCA, err := testcerts.NewCA(t.TempDir(), "new")
	require.NoError(t, err)
	pairs := map[string]testcerts.Pair{}
	for name, issue := range map[string]func(string) (testcerts.Pair, error){
		"old-server": oldCA.Server, "new-server": newCA.Server, "old-client": oldCA.Client, "new-client": newCA.Client,
	} {
		pairs[name], err = issue(name)
		require.NoError(t, err)
	}
	live := func(name string) testcerts.Pair {
		return testcerts.Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	}
	install := func(to testcerts.Pair, from testcerts.Pair, caFrom, caTo string) {
		later := time.Now().Add(time.Duration(len(caTo)) * time.Hour) // a distinct, later mtime
		for src, dst := range map[string]string{from.CertFile: to.CertFile, from.KeyFile: to.KeyFile, caFrom: caTo} {
			b, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(dst+".tmp", b, 0o600))
			require.NoError(t, os.Rename(dst+".tmp", dst))
			require.NoError(t, os.Chtimes(dst, later, later))
		}
	}
	srvFiles, cliFiles := live("server"), live("client")
	srvCA, cliCA := filepath.Join(dir, "server-ca.crt"), filepath.Join(dir, "client-ca.crt")
	install(srvFiles, pairs["old-server"], oldCA.CertFile, srvCA)
	install(cliFiles, pairs["old-client"], oldCA.CertFile, cliCA)

	sc := ServerConfig{CertFile: srvFiles.CertFile, KeyFile: srvFiles.KeyFile, CAFile: srvCA, ClientAuth: ClientAuthRequireAndVerify}
	addr := serveHealth(t, sc)

	rotating := ClientConfig{Enabled: true, CertFile: cliFiles.CertFile, KeyFile: cliFiles.KeyFile, CAFile: cliCA}
	rotatingDial, err := rotating.DialOption()
	require.NoError(t, err)
	stale := ClientConfig{Enabled: true, CertFile: pairs["old-client"].CertFile, KeyFile: pairs["old-client"].KeyFile, CAFile: oldCA.CertFile}
	staleDial, err := stale.DialOption()
	require.NoError(t, err)
	check := func(dial grpc.DialOption) error { return healthCheck(t, addr, dial) }
	require.NoError(t, check(rotatingDial))
	require.NoError(t, check(staleDial))

	install(srvFiles, pairs["new-server"], newCA.CertFile, srvCA)
	install(cliFiles, pairs["new-client"], newCA.CertFile, cliCA)
	require.Eventually(t, func() bool { return check(rotatingDial) == nil && check(staleDial) != nil },
		15*time.Second, 200*time.Millisecond, "after the rotation the new material is used and the old refused")
}

// serveHealth serves the gRPC health service with sc's TLS until the test
// ends, and returns its address.
func serveHealth(t *testing.T, sc ServerConfig) string {
	t.Helper()
	opt, err := sc.ServerOption()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(opt)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// healthCheck calls the health service at addr over a new connection.
func healthCheck(t *testing.T, addr string, dial grpc.DialOption) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, dial)
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}
