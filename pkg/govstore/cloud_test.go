//go:build cloudstores

package govstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cloud stores against real emulators (`make test` builds them once and
// passes them on): fake-gcs-server for Google Cloud Storage (PROMGOV_FAKE_GCS)
// and Azurite for Azure Blob Storage (PROMGOV_AZURITE, its azurite-blob).
//
//	test ──objstore gcs──► fake-gcs-server (HTTP, in memory)
//	test ──objstore azure─► azurite-blob   (HTTP, a scratch directory)

// peer returns the emulator at $env, skipping the test without it unless
// PROMGOV_REQUIRE_INTEGRATION is set.
func peer(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("%s is not set: make test builds the emulator and sets it", env)
		}
		t.Skipf("%s is not set: run make test (it builds the emulator)", env)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs an emulator until the test ends and waits until url answers.
func start(t *testing.T, url string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "%s never answered at %s", filepath.Base(name), url)
}

// exerciseStore writes, reads and conflicts through the store, as the
// governance API does.
func exerciseStore(t *testing.T, c Config) {
	t.Helper()
	require.NoError(t, c.Validate())
	st, err := c.Open()
	require.NoError(t, err)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v1, err := st.Write(ctx, WriteRequest{Body: []byte("rules: []\n"), IfMatch: 0, Author: "seed"})
	require.NoError(t, err)
	require.EqualValues(t, 1, v1.Number)
	v2, err := st.Write(ctx, WriteRequest{Body: []byte("rules:\n  - name: r\n    relabel_configs: [{action: drop, source_labels: [__name__], regex: x}]\n"), IfMatch: 1, Author: "alice", Message: "drop x"})
	require.NoError(t, err)
	require.EqualValues(t, 2, v2.Number)
	_, err = st.Write(ctx, WriteRequest{Body: []byte("rules: []\n"), IfMatch: 1, Author: "bob"})
	var ce *ConflictError
	require.True(t, errors.As(err, &ce), "a stale write is a conflict: %v", err)
	state, err := st.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, state.Active.Number)
	require.Equal(t, "alice", state.Active.Author)
	metas, corrupt, err := st.List(ctx)
	require.NoError(t, err)
	require.Empty(t, corrupt)
	require.Len(t, metas, 2)
}

func TestGCSStore(t *testing.T) {
	bin := peer(t, "PROMGOV_FAKE_GCS")
	port := freePort(t)
	data := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(data, "promgov"), 0o755)) // the bucket
	host := fmt.Sprintf("127.0.0.1:%d", port)
	start(t, "http://"+host+"/storage/v1/b", bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-data", data, "-public-host", host)
	t.Setenv("STORAGE_EMULATOR_HOST", host)
	var c Config
	c.RegisterFlags("governance.", flag.NewFlagSet("t", flag.ContinueOnError))
	c.Backend, c.GCS.Bucket, c.GCS.ServiceAccountFile = BackendGCS, "promgov", serviceAccount(t)
	exerciseStore(t, c)
}

// serviceAccount writes a service account key whose token endpoint is a
// local stand-in for Google's OAuth server (the emulator checks no token;
// the client insists on having one) and returns its file.
func serviceAccount(t *testing.T) string {
	t.Helper()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"emulator","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	sa, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "promgov", "private_key_id": "test",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"client_email": "promgov@promgov.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokens.URL,
	})
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "sa.json")
	require.NoError(t, os.WriteFile(f, sa, 0o600))
	return f
}

func TestAzureStore(t *testing.T) {
	bin := peer(t, "PROMGOV_AZURITE")
	port := freePort(t)
	start(t, fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1?comp=list", port), bin,
		"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--location", t.TempDir(), "--silent", "--skipApiVersionCheck", "--disableTelemetry")
	// Azurite's documented development account and key.
	cs := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;", port)
	csFile := filepath.Join(t.TempDir(), "connection-string")
	require.NoError(t, os.WriteFile(csFile, []byte(cs), 0o600))
	var c Config
	c.RegisterFlags("governance.", flag.NewFlagSet("t", flag.ContinueOnError))
	c.Backend = BackendAzure
	c.Azure.StorageAccount = "devstoreaccount1"
	c.Azure.Container, c.Azure.ConnectionStringFile, c.Azure.CreateContainer = "promgov", csFile, true
	exerciseStore(t, c)
}
