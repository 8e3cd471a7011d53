package retro

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
)

// TestBucketStore runs the same round trip on the in-memory bucket and on
// the filesystem bucket (the governance store's filesystem backend).
func TestBucketStore(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	for name, bkt := range map[string]objstore.Bucket{"inmem": objstore.NewInMemBucket(), "filesystem": fs} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := NewBucketStore(bkt)
			list, err := s.list(ctx)
			require.NoError(t, err)
			require.Empty(t, list)

			now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
			j2 := &Job{ID: "20261205T030001-bbbbbbbb", State: StateQueued, Created: now}
			j1 := &Job{ID: "20261205T030000-aaaaaaaa", State: StateRunning, Created: now, Done: []bool{true, false},
				Owner: "ingester-1", LeaseRenewed: now, Progress: Progress{BatchesTotal: 2, BatchesDone: 1}}
			require.NoError(t, s.save(ctx, j2))
			require.NoError(t, s.save(ctx, j1))
			// Not a job: a stray object and a directory without a record.
			require.NoError(t, bkt.Upload(ctx, "jobs/README", strings.NewReader("x")))
			require.NoError(t, s.savePlan(ctx, "20261205T030002-cccccccc", nil))

			list, err = s.list(ctx)
			require.NoError(t, err)
			require.Len(t, list, 2)
			require.Equal(t, j1.ID, list[0].ID, "oldest first")
			require.Equal(t, []bool{true, false}, list[0].Done)
			require.Equal(t, "ingester-1", list[0].Owner)
			require.True(t, now.Equal(list[0].LeaseRenewed))

			_, err = s.Get(ctx, "20261205T030009-dddddddd")
			require.True(t, errors.Is(err, ErrNotFound), "%v", err)
			_, err = s.Get(ctx, "../etc")
			require.True(t, errors.Is(err, ErrNotFound), "%v", err)

			_, ok, err := s.loadPlan(ctx, j1.ID)
			require.NoError(t, err)
			require.False(t, ok)
			items := []Item{{Source: labels.FromStrings("__name__", "a", "x", "1"), Target: labels.FromStrings("__name__", "b", "x", "1"), Action: ActionRewrite, Samples: 3}}
			require.NoError(t, s.savePlan(ctx, j1.ID, items))
			got, ok, err := s.loadPlan(ctx, j1.ID)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, items[0].Target.String(), got[0].Target.String())
			require.Equal(t, int64(3), got[0].Samples)

			_, ok, err = s.Control(ctx, j1.ID)
			require.NoError(t, err)
			require.False(t, ok)
			c1, err := s.RequestControl(ctx, j1.ID, ctrlCancel)
			require.NoError(t, err)
			c2, err := s.RequestControl(ctx, j1.ID, ctrlResume)
			require.NoError(t, err)
			require.Greater(t, c2.Seq, c1.Seq)
			// A progress write of the record does not touch the request.
			require.NoError(t, s.save(ctx, j1))
			c, ok, err := s.Control(ctx, j1.ID)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, ctrlResume, c.Request)
			require.Equal(t, c2.Seq, c.Seq)
			_, err = s.RequestControl(ctx, j1.ID, "pause")
			require.Error(t, err)
		})
	}
}

// TestBucketStoreRereadsTornRecord: a record read while a filesystem bucket
// rewrites it in place is read again.
func TestBucketStoreRereadsTornRecord(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	s := NewBucketStore(bkt)
	id := "20261205T030000-aaaaaaaa"
	require.NoError(t, bkt.Upload(ctx, jobKey(id, jobObject), strings.NewReader(`{"id":"`+id+`","sta`)))
	torn := &tornOnce{Bucket: bkt, fixed: `{"id":"` + id + `","state":"queued"}`}
	j, err := NewBucketStore(torn).Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, StateQueued, j.State)
	require.NoError(t, bkt.Upload(ctx, jobKey(id, jobObject), strings.NewReader(`not json`)))
	_, err = s.Get(ctx, id)
	require.Error(t, err, "a corrupt record stays an error")
}

// tornOnce answers the stored (torn) object once, then fixed.
type tornOnce struct {
	objstore.Bucket
	fixed string
	reads int
}

func (b *tornOnce) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b.reads++
	if b.reads == 1 {
		return b.Bucket.Get(ctx, name)
	}
	return io.NopCloser(strings.NewReader(b.fixed)), nil
}
