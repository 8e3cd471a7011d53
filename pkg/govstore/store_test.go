package govstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
)

const ruleA = `rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: debug_.*
        action: drop
`

const ruleB = `rules:
  - name: drop-test
    relabel_configs:
      - source_labels: [__name__]
        regex: test_.*
        action: drop
`

func newFSStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := filesystem.NewBucket(dir)
	require.NoError(t, err)
	return New(b), dir
}

func TestWriteReadHistory(t *testing.T) {
	s, _ := newFSStore(t)
	ctx := context.Background()
	v1, err := s.Seed(ctx, []byte(ruleA), "seed:promgov.yml")
	require.NoError(t, err)
	require.EqualValues(t, 1, v1.Number)
	again, err := s.Seed(ctx, []byte(ruleB), "seed:promgov.yml")
	require.NoError(t, err)
	require.Nil(t, again, "a store with versions is not seeded again")

	v2, err := s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "alice", Message: "drop test metrics"})
	require.NoError(t, err)
	require.EqualValues(t, 2, v2.Number)
	require.EqualValues(t, 1, v2.Parent)
	require.Equal(t, "alice", v2.Author)
	require.Equal(t, ContentHash([]byte(v2.Body)), v2.Hash)

	// A fresh Store (another node) reads the same history from the bucket.
	other := New(s.bkt)
	metas, bad, err := other.List(ctx)
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Len(t, metas, 2)
	require.Equal(t, "drop test metrics", metas[1].Message)
	st, err := other.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Active.Number)
	d, err := ParseDocument([]byte(st.Active.Body))
	require.NoError(t, err)
	require.Equal(t, "drop-test", d.Rules[0].Name)
}

func TestStaleWriteConflicts(t *testing.T) {
	s, _ := newFSStore(t)
	ctx := context.Background()
	_, err := s.Seed(ctx, []byte(ruleA), "seed")
	require.NoError(t, err)
	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "alice"})
	require.NoError(t, err)
	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleA), IfMatch: 1, Author: "bob"})
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.EqualValues(t, 2, ce.Current.Number)
	require.Equal(t, "alice", ce.Current.Author)
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, head, "a stale write stores nothing")
}

// Writers in separate Stores (separate processes) on one bucket: however
// they interleave, each version number is written once and every write
// either wins, gets a conflict (another wrote version 2 first) or, when
// claims overlapped, a retryable UnavailableError (nobody wrote it; see
// Store.claim).
func TestConcurrentWritersNeverOverwrite(t *testing.T) {
	s, dir := newFSStore(t)
	ctx := context.Background()
	_, err := s.Seed(ctx, []byte(ruleA), "seed")
	require.NoError(t, err)
	const writers = 8
	var wg sync.WaitGroup
	wins := make(chan *Version, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := filesystem.NewBucket(dir)
			if err != nil {
				return
			}
			body := strings.Replace(ruleB, "drop-test", "drop-test-"+string(rune('a'+i)), 1)
			v, err := New(b).Write(ctx, WriteRequest{Body: []byte(body), IfMatch: 1, Author: "w"})
			var (
				ce *ConflictError
				ue *UnavailableError
			)
			switch {
			case err == nil:
				wins <- v
			case errors.As(err, &ce):
			case errors.As(err, &ue) && strings.Contains(err.Error(), "at the same moment"):
			default:
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var won []*Version
	for v := range wins {
		won = append(won, v)
	}
	require.LessOrEqual(t, len(won), 1, "two writers both wrote version 2")
	if len(won) == 1 {
		got, err := New(s.bkt).Get(ctx, 2)
		require.NoError(t, err)
		require.Equal(t, won[0].Hash, got.Hash, "the stored version is the winner's")
	}
}

func TestInvalidCandidateStoresNothing(t *testing.T) {
	s, _ := newFSStore(t)
	ctx := context.Background()
	for name, tc := range map[string]struct{ body, want string }{
		"unknown action":  {"rules:\n  - name: x\n    limits: {max_labels: 3}\n    action: explode\n", "rules[0]"},
		"unknown section": {"rulez: []\n", "rulez"},
		"bad limit regexp": {"cardinality:\n  limits:\n    metrics:\n      - metric: \"(\"\n        max_series_per_metric: 1\n",
			"cardinality.limits.metrics[0].metric"},
		"bad drop mode": {"usage:\n  drop_unused:\n    mode: sometimes\n", "usage.drop_unused"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Write(ctx, WriteRequest{Body: []byte(tc.body), IfMatch: 0, Author: "a"})
			require.ErrorContains(t, err, tc.want)
			head, err := s.Head(ctx)
			require.NoError(t, err)
			require.Zero(t, head)
		})
	}
}

func TestCorruptedVersionIsSkipped(t *testing.T) {
	s, dir := newFSStore(t)
	ctx := context.Background()
	_, err := s.Seed(ctx, []byte(ruleA), "seed")
	require.NoError(t, err)
	v2, err := s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "a"})
	require.NoError(t, err)
	// Change the body behind the store's back: its hash no longer matches.
	path := filepath.Join(dir, versionName(2))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), "drop-test", "drop-tost", 1)), 0o644))

	fresh := New(s.bkt)
	_, err = fresh.Get(ctx, 2)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "does not match its hash")
	st, err := fresh.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Active.Number, "the corrupted version is skipped")
	require.Len(t, st.Corrupt, 1)
	require.NotEqual(t, v2.Hash, st.Active.Hash)

	// A truncated object too.
	require.NoError(t, os.WriteFile(path, b[:len(b)/2], 0o644))
	_, err = New(s.bkt).Get(ctx, 2)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestFailedVersionIsSkipped(t *testing.T) {
	s, _ := newFSStore(t)
	ctx := context.Background()
	_, err := s.Seed(ctx, []byte(ruleA), "seed")
	require.NoError(t, err)
	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "a"})
	require.NoError(t, err)
	require.NoError(t, s.MarkFailed(ctx, 2, "ingester-1", "bad regexp"))
	st, err := s.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Active.Number)
	require.Equal(t, "ingester-1", st.Failed[2].Node)
	require.EqualValues(t, 2, st.Head)
}

func TestShadowVersionIsNotActive(t *testing.T) {
	s, _ := newFSStore(t)
	ctx := context.Background()
	_, err := s.Seed(ctx, []byte(ruleA), "seed")
	require.NoError(t, err)
	_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: 1, Author: "a", Mode: ModeShadow})
	require.NoError(t, err)
	st, err := s.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Active.Number)
	require.EqualValues(t, 2, st.Shadow.Number)
}

// failingBucket fails every operation, as an unreachable store does.
type failingBucket struct{ objstore.Bucket }

var errDown = errors.New("connection refused")

func (failingBucket) Iter(context.Context, string, func(string) error, ...objstore.IterOption) error {
	return errDown
}
func (failingBucket) Get(context.Context, string) (io.ReadCloser, error) { return nil, errDown }
func (failingBucket) Upload(context.Context, string, io.Reader, ...objstore.ObjectUploadOption) error {
	return errDown
}

func TestUnreachableStoreIsUnavailable(t *testing.T) {
	s := New(failingBucket{objstore.NewInMemBucket()})
	ctx := context.Background()
	_, err := s.Write(ctx, WriteRequest{Body: []byte(ruleA), IfMatch: 0, Author: "a"})
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue)
	require.ErrorIs(t, err, errDown)
	_, err = s.Resolve(ctx)
	require.ErrorAs(t, err, &ue)
}

func TestCanonicalIsStable(t *testing.T) {
	for name, body := range map[string]string{
		"empty":  "",
		"rules":  ruleA,
		"limits": "cardinality:\n  limits:\n    defaults:\n      max_series_per_metric: 1000\n    metrics:\n      - metric: http_.*\n        max_values_per_label: 10\n",
		"drop":   "usage:\n  drop_unused:\n    mode: shadow\n    grace_period: 24h\n    allow: [up]\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, c1, err := Normalize([]byte(body))
			require.NoError(t, err)
			_, c2, err := Normalize(c1)
			require.NoError(t, err)
			require.Equal(t, string(c1), string(c2))
		})
	}
}

func TestDiff(t *testing.T) {
	_, a, err := Normalize([]byte(ruleA))
	require.NoError(t, err)
	_, b, err := Normalize([]byte(ruleB))
	require.NoError(t, err)
	d, err := Diff(a, b, "version 1", "version 2")
	require.NoError(t, err)
	require.Contains(t, d, "--- version 1")
	require.Contains(t, d, "-  - name: drop-debug")
	require.Contains(t, d, "+  - name: drop-test")
}

func bytesReader(s string) io.Reader { return strings.NewReader(s) }
