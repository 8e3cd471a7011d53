package clustertls

import (
	"context"
	"net"
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
	opt, err := sc.ServerOption()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(opt)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	for name, tc := range map[string]struct {
		cfg ClientConfig
		ok  bool
	}{
		"member":                    {ClientConfig{Enabled: true, CertFile: member.CertFile, KeyFile: member.KeyFile, CAFile: ca.CertFile}, true},
		"no certificate":            {ClientConfig{Enabled: true, CAFile: ca.CertFile}, false},
		"certificate of another CA": {ClientConfig{Enabled: true, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile, CAFile: ca.CertFile}, false},
		"plaintext":                 {ClientConfig{}, false},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			dial, err := tc.cfg.DialOption()
			require.NoError(t, err)
			conn, err := grpc.NewClient(ln.Addr().String(), dial)
			require.NoError(t, err)
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
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
