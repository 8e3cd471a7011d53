// Package clustertls secures the gRPC traffic inside a promgov cluster
// (distributor → ingester pushes and queries, ingester ↔ ingester sync and
// handoff) with TLS and mutual authentication: an ingester's server
// (--grpc.tls-*) accepts only clients presenting a certificate its CA
// signed, and every client (--ingester.client.tls-*) presents one and
// verifies the ingester's. The flag names follow Mimir's. Without
// certificates both sides stay plaintext (docs/security.md).
package clustertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/promgov/promgov/internal/filewatch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Client authentication policies of ServerConfig.ClientAuth.
const (
	ClientAuthRequireAndVerify = "RequireAndVerifyClientCert"
	ClientAuthVerifyIfGiven    = "VerifyClientCertIfGiven"
	ClientAuthNone             = "NoClientCert"
)

// ServerConfig is an ingester's gRPC server TLS (prefix "grpc.").
type ServerConfig struct {
	CertFile   string `yaml:"tls_cert_path"`
	KeyFile    string `yaml:"tls_key_path"`
	CAFile     string `yaml:"tls_ca_path"`
	ClientAuth string `yaml:"tls_client_auth"`
}

// RegisterFlags registers the flags under prefix ("grpc." gives
// --grpc.tls-cert-path and so on).
func (c *ServerConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.CertFile, prefix+"tls-cert-path", "", "gRPC server certificate (PEM); with --grpc.tls-key-path turns TLS on for Push and the cluster RPCs.")
	fs.StringVar(&c.KeyFile, prefix+"tls-key-path", "", "gRPC server private key (PEM).")
	fs.StringVar(&c.CAFile, prefix+"tls-ca-path", "", "CA certificates (PEM) that sign the clients' certificates; required with --grpc.tls-client-auth="+ClientAuthRequireAndVerify+".")
	fs.StringVar(&c.ClientAuth, prefix+"tls-client-auth", ClientAuthRequireAndVerify, "Client certificate policy with TLS on: "+ClientAuthRequireAndVerify+" (only cluster members), "+ClientAuthVerifyIfGiven+" or "+ClientAuthNone+".")
}

// Enabled reports whether TLS is configured.
func (c *ServerConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Validate reports a configuration error naming the field and the fix.
func (c *ServerConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return errors.New("grpc tls_cert_path and tls_key_path: set both (--grpc.tls-cert-path, --grpc.tls-key-path) or neither")
	}
	switch c.ClientAuth {
	case ClientAuthRequireAndVerify, ClientAuthVerifyIfGiven:
		if c.CAFile == "" {
			return fmt.Errorf("grpc tls_ca_path: required with tls_client_auth %s; set --grpc.tls-ca-path to the CA that signs the members' certificates", c.ClientAuth)
		}
	case ClientAuthNone:
	default:
		return fmt.Errorf("grpc tls_client_auth %q: use %s, %s or %s", c.ClientAuth, ClientAuthRequireAndVerify, ClientAuthVerifyIfGiven, ClientAuthNone)
	}
	return nil
}

// ServerOption returns the grpc.ServerOption of the configuration
// (insecure credentials when TLS is off). The certificate, key and CA are
// read again on a new connection after their files changed (checked at
// most once a second), so rotating them needs no restart; a pair that does
// not load (say, half written) leaves the last good one in use.
func (c *ServerConfig) ServerOption() (grpc.ServerOption, error) {
	if !c.Enabled() {
		return grpc.Creds(insecure.NewCredentials()), nil
	}
	files, err := watchFiles(c.CertFile, c.KeyFile, c.CAFile, "grpc tls_cert_path/tls_key_path", "grpc tls_ca_path")
	if err != nil {
		return nil, err
	}
	auth := tls.NoClientCert
	switch c.ClientAuth {
	case ClientAuthRequireAndVerify:
		auth = tls.RequireAndVerifyClientCert
	case ClientAuthVerifyIfGiven:
		auth = tls.VerifyClientCertIfGiven
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m, _ := files.Get() // on a failed reload, the last good material
			return &tls.Config{
				Certificates: []tls.Certificate{*m.cert},
				ClientCAs:    m.pool,
				ClientAuth:   auth,
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2"}, // gRPC's ALPN, which the returned config must carry
			}, nil
		},
	}
	return grpc.Creds(credentials.NewTLS(cfg)), nil
}

// ClientConfig is the TLS of connections to ingesters (prefix
// "ingester.client.").
type ClientConfig struct {
	Enabled            bool   `yaml:"tls_enabled"`
	CertFile           string `yaml:"tls_cert_path"`
	KeyFile            string `yaml:"tls_key_path"`
	CAFile             string `yaml:"tls_ca_path"`
	ServerName         string `yaml:"tls_server_name"`
	InsecureSkipVerify bool   `yaml:"tls_insecure_skip_verify"`
}

// RegisterFlags registers the flags under prefix ("ingester.client." gives
// --ingester.client.tls-enabled and so on).
func (c *ClientConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, prefix+"tls-enabled", false, "Connect to ingesters over TLS.")
	fs.StringVar(&c.CertFile, prefix+"tls-cert-path", "", "Client certificate (PEM) presented to ingesters.")
	fs.StringVar(&c.KeyFile, prefix+"tls-key-path", "", "Client private key (PEM).")
	fs.StringVar(&c.CAFile, prefix+"tls-ca-path", "", "CA certificates (PEM) that sign the ingesters' certificates (default: the system's).")
	fs.StringVar(&c.ServerName, prefix+"tls-server-name", "", "Server name expected in the ingesters' certificates (default: the host of the address in the ring).")
	fs.BoolVar(&c.InsecureSkipVerify, prefix+"tls-insecure-skip-verify", false, "Do not verify the ingesters' certificates (testing only: anyone can impersonate an ingester).")
}

// Validate reports a configuration error naming the field and the fix.
func (c *ClientConfig) Validate() error {
	if !c.Enabled {
		if c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" {
			return errors.New("ingester client tls_cert_path/tls_key_path/tls_ca_path: set, but tls_enabled is false; add --ingester.client.tls-enabled")
		}
		return nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("ingester client tls_cert_path and tls_key_path: set both (--ingester.client.tls-cert-path, --ingester.client.tls-key-path) or neither")
	}
	return nil
}

// DialOption returns the grpc.DialOption of the configuration (insecure
// credentials when TLS is off). As for the server, the client certificate
// and the CA are read again after their files changed, for new
// connections.
func (c *ClientConfig) DialOption() (grpc.DialOption, error) {
	if !c.Enabled {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	files, err := watchFiles(c.CertFile, c.KeyFile, c.CAFile, "ingester client tls_cert_path/tls_key_path", "ingester client tls_ca_path")
	if err != nil {
		return nil, err
	}
	base := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // an explicit, documented testing option
	build := func() credentials.TransportCredentials {
		cfg := base.Clone()
		m, _ := files.Get() // on a failed reload, the last good material
		if m.cert != nil {
			cfg.Certificates = []tls.Certificate{*m.cert}
		}
		cfg.RootCAs = m.pool // nil: the system's
		return credentials.NewTLS(cfg)
	}
	return grpc.WithTransportCredentials(&rotatingCreds{TransportCredentials: build(), build: build}), nil
}

// rotatingCreds makes each client handshake with TLS credentials built
// from the current files, so crypto/tls verifies the server (chain and
// name) against the CA in the file now.
type rotatingCreds struct {
	credentials.TransportCredentials // Info, ServerHandshake and the rest
	build                            func() credentials.TransportCredentials
}

func (r *rotatingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return r.build().ClientHandshake(ctx, authority, conn)
}

func (r *rotatingCreds) Clone() credentials.TransportCredentials {
	return &rotatingCreds{TransportCredentials: r.TransportCredentials.Clone(), build: r.build}
}

// material is a certificate pair and a CA pool read from files.
type material struct {
	cert *tls.Certificate // nil without a pair
	pool *x509.CertPool   // nil without a CA file
}

// watchFiles loads the pair and the CA (each optional) and keeps them
// current with the files; pairField and caField name the settings in
// errors.
func watchFiles(certFile, keyFile, caFile, pairField, caField string) (*filewatch.Cache[material], error) {
	return filewatch.New(time.Second, func() (material, []string, error) {
		files := []string{certFile, keyFile, caFile}
		var m material
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return m, files, fmt.Errorf("%s: %w", pairField, err)
			}
			m.cert = &cert
		}
		if caFile != "" {
			pool, err := loadPool(caFile)
			if err != nil {
				return m, files, fmt.Errorf("%s: %w", caField, err)
			}
			m.pool = pool
		}
		return m, files, nil
	})
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
