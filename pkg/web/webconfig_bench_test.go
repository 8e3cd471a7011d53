package web

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	toolkitweb "github.com/prometheus/exporter-toolkit/web"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/testcerts"
)

// BenchmarkWebConfigRequest: one HTTPS request on a kept-alive connection
// through a server with a web configuration file, served by
// exporter-toolkit's Serve (which reads and parses the file per request)
// and by promgov's (which parses it once per change). The difference is
// the per-request cost removed.
func BenchmarkWebConfigRequest(b *testing.B) {
	dir := b.TempDir()
	ca, err := testcerts.NewCA(dir, "bench")
	require.NoError(b, err)
	pair, err := ca.Server("server")
	require.NoError(b, err)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(b, os.WriteFile(webCfg, []byte("tls_server_config:\n  cert_file: "+pair.CertFile+"\n  key_file: "+pair.KeyFile+
		"\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"), 0o600))
	noContent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	logger := slog.New(slog.DiscardHandler)
	serve := map[string]func(b *testing.B) (addr string, stop func()){
		"exporter-toolkit": func(b *testing.B) (string, func()) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			srv := &http.Server{Handler: noContent}
			go func() {
				_ = toolkitweb.Serve(ln, srv, &toolkitweb.FlagConfig{WebListenAddresses: &[]string{ln.Addr().String()}, WebSystemdSocket: new(bool), WebConfigFile: &webCfg}, logger)
			}()
			return ln.Addr().String(), func() { _ = srv.Close() }
		},
		"promgov": func(b *testing.B) (string, func()) {
			mux := http.NewServeMux()
			mux.Handle("POST /write", noContent)
			s, err := New(Config{ListenAddress: "127.0.0.1:0", ShutdownTimeout: 5e9, ConfigFile: webCfg}, mux, prometheus.NewRegistry(), func() error { return nil }, logger)
			require.NoError(b, err)
			go func() { _ = s.serveWebConfig() }()
			return s.Addr(), func() { _ = s.srv.Close() }
		},
	}
	body := make([]byte, 16<<10)
	for _, name := range []string{"exporter-toolkit", "promgov"} {
		b.Run(name, func(b *testing.B) {
			addr, stop := serve[name](b)
			defer stop()
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			post := func() error {
				resp, err := client.Post("https://"+addr+"/write", "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.Body.Close()
			}
			require.Eventually(b, func() bool { return post() == nil }, 5e9, 1e7)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := post(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
