package govstore

import (
	"context"
	"errors"
	"sync"
	"testing"

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

	// Writers on separate clients race for version 3: at most one wins
	// (all may back off with a conflict when their claims overlap).
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 4 {
		w := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.Write(ctx, WriteRequest{Body: []byte(ruleA), IfMatch: 2, Author: "racer"})
			var ce *ConflictError
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.As(err, &ce):
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
