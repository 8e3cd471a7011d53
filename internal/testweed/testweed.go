// Package testweed starts a real SeaweedFS server with its S3 gateway
// (PROMGOV_WEED, built by `make test-peers`) for tests of the S3 path of
// the governance store. Tests skip with a clear message when PROMGOV_WEED
// is unset, and fail when PROMGOV_REQUIRE_INTEGRATION is set.
package testweed

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/promgov/promgov/internal/testport"
)

// Credentials of the identity the server is started with.
const (
	AccessKey = "promgov"
	SecretKey = "promgov-secret-key"
)

// Server is a running SeaweedFS with S3 on Endpoint (host:port, HTTP).
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
}

// Start starts SeaweedFS (master, volume, filer, S3) on loopback ports
// and creates bucket. It is stopped when the test ends.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := os.Getenv("PROMGOV_WEED")
	if bin == "" {
		msg := "PROMGOV_WEED is not set: run `make test`, which builds SeaweedFS (weed) once and sets it"
		if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s3.json")
	ident := fmt.Sprintf(`{"identities":[{"name":"promgov","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, AccessKey, SecretKey)
	if err := os.WriteFile(cfg, []byte(ident), 0o600); err != nil {
		t.Fatal(err)
	}
	p := func() string { return strconv.Itoa(testport.Port(t)) }
	s3Port := p()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + data,
		"-master.port=" + p(), "-master.port.grpc=" + p(), "-master.volumeSizeLimitMB=64",
		"-volume.port=" + p(), "-volume.port.grpc=" + p(), "-volume.max=4",
		"-filer.port=" + p(), "-filer.port.grpc=" + p(),
		"-s3", "-s3.port=" + s3Port, "-s3.port.grpc=" + p(), "-s3.config=" + cfg,
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=" + p()}
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	s := &Server{Endpoint: net.JoinHostPort("127.0.0.1", s3Port), cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("weed log (tail):\n%s", b)
		}
	})
	mc, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Secure: false})
	if err != nil {
		t.Fatal(err)
	}
	// The S3 gateway answers once master, volume and filer are up.
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		cancel()
		// An attempt whose answer came after its timeout may have made
		// the bucket: this server's data directory is new, so a bucket
		// already owned is that attempt's.
		if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeaweedFS S3 on %s did not come up: %v", s.Endpoint, err)
		}
		time.Sleep(250 * time.Millisecond) // polling a starting process: no event to wait on
	}
	// The first write makes SeaweedFS grow its volumes, which takes
	// seconds: do it here so the tests time their own writes.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := mc.PutObject(ctx, bucket, "warmup", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("SeaweedFS S3 warm-up write: %v", err)
	}
	if err := mc.RemoveObject(ctx, bucket, "warmup", minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("SeaweedFS S3 warm-up delete: %v", err)
	}
	return s
}
