package govstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/testweed"
)

// The S3 path against a real S3 server (SeaweedFS): history, conflicts,
// concurrent writers from separate clients, failure marks, corruption.
func TestS3Store(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SeaweedFS")
	}
	srv := testweed.Start(t, "promgov-gov")
	cfg := Config{Backend: BackendS3, S3: S3Config{Bucket: "promgov-gov", Endpoint: srv.Endpoint,
		AccessKey: testweed.AccessKey, SecretKey: testweed.SecretKey, Insecure: true, Region: "us-east-1"}}
	open := func() *Store {
		s, err := cfg.Open()
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s := open()
	ctx := context.Background()
	v1, err := s.Seed(ctx, []byte(ruleA), "seed:promgov.yml")
	require.NoError(t, err)
	require.EqualValues(t, 1, v1.Number)

	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "alice", Message: "m"})
	require.NoError(t, err)
	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleA), IfMatch: 1, Author: "bob"})
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.EqualValues(t, 2, ce.Current.Number)

	// Writers on separate clients race for version 3: at most one wins;
	// the others get a conflict (the winner moved the head) or, when
	// their claims overlapped, an unavailable error (retry).
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 4 {
		w := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.Write(ctx, WriteRequest{Body: []byte(ruleA), IfMatch: 2, Author: "racer"})
			var (
				ce *ConflictError
				ue *UnavailableError
			)
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.As(err, &ce) && !errors.As(err, &ue):
				t.Errorf("write: %v", err)
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, wins, 1)

	fresh := open()
	metas, bad, err := fresh.List(ctx)
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Len(t, metas, 2+wins)

	// Corrupt the newest version object in the bucket: it is skipped.
	head, err := fresh.Head(ctx)
	require.NoError(t, err)
	require.NoError(t, fresh.bkt.Upload(ctx, versionName(head), bytesReader(`{"version":`)))
	st, err := open().Resolve(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.Active, "state %+v head %d", st, head)
	require.Less(t, st.Active.Number, head)
	require.Len(t, st.Corrupt, 1)

	require.NoError(t, fresh.MarkFailed(ctx, st.Active.Number, "n1", "rejected"))
	st2, err := open().Resolve(ctx)
	require.NoError(t, err)
	if st.Active.Number == 1 {
		require.Nil(t, st2.Active, "no good version is left")
	} else {
		require.Less(t, st2.Active.Number, st.Active.Number)
	}
}

// TestS3StoreCredentials opens the store with the secret key from a file
// and, without keys in the configuration, from the environment; a wrong
// secret fails.
func TestS3StoreCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SeaweedFS")
	}
	srv := testweed.Start(t, "promgov-cred")
	base := S3Config{Bucket: "promgov-cred", Endpoint: srv.Endpoint, Insecure: true, Region: "us-east-1"}
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(testweed.SecretKey+"\n"), 0o600))
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	require.NoError(t, os.WriteFile(wrongFile, []byte("not-the-secret"), 0o600))

	for name, tc := range map[string]struct {
		s3  func(S3Config) S3Config
		env bool
		ok  bool
	}{
		"secret key file": {s3: func(c S3Config) S3Config { c.AccessKey, c.SecretKeyFile = testweed.AccessKey, secretFile; return c }, ok: true},
		"environment":     {s3: func(c S3Config) S3Config { return c }, env: true, ok: true},
		"wrong secret":    {s3: func(c S3Config) S3Config { c.AccessKey, c.SecretKeyFile = testweed.AccessKey, wrongFile; return c }},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.env {
				t.Setenv("AWS_ACCESS_KEY_ID", testweed.AccessKey)
				t.Setenv("AWS_SECRET_ACCESS_KEY", testweed.SecretKey)
			}
			cfg := Config{Backend: BackendS3, S3: tc.s3(base), FileMode: FileModeStore, PollInterval: time.Second, Timeout: 10 * time.Second}
			require.NoError(t, cfg.Validate())
			s, err := cfg.Open()
			require.NoError(t, err)
			defer func() { _ = s.Close() }()
			_, err = s.Head(context.Background())
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	bad := Config{Backend: BackendS3, S3: S3Config{Bucket: "b", Endpoint: "e", SecretKey: "x", SecretKeyFile: secretFile},
		FileMode: FileModeStore, PollInterval: time.Second, Timeout: time.Second}
	require.ErrorContains(t, bad.Validate(), "governance.s3: secret_key and secret_key_file are both set")
}
