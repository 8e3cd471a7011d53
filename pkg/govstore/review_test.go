package govstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRejectedShadowIsNotStaged(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		reject     []uint64
		wantShadow uint64 // 0: none
		wantErr    string
	}{
		"no rejection stages the newest candidate": {wantShadow: 3},
		"rejecting the newest stages the older":    {reject: []uint64{3}, wantShadow: 2},
		"rejecting both stages none":               {reject: []uint64{3, 2}},
		"an enforce version is not rejected":       {reject: []uint64{1}, wantShadow: 3, wantErr: "only shadow candidates are rejected"},
		"a missing version is not rejected":        {reject: []uint64{9}, wantShadow: 3, wantErr: "not found"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := newFSStore(t)
			_, err := s.Seed(ctx, []byte(ruleA), "seed")
			require.NoError(t, err)
			for i := range 2 {
				_, err = s.Write(ctx, WriteRequest{Body: []byte(ruleB), IfMatch: uint64(i + 1), Author: "a", Mode: ModeShadow})
				require.NoError(t, err)
			}
			for _, n := range tc.reject {
				m, err := s.Reject(ctx, n, "bob", "saves too little")
				if tc.wantErr != "" {
					require.ErrorContains(t, err, tc.wantErr)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, "bob", m.By)
			}
			// Another node reads the same marks from the bucket.
			st, err := New(s.bkt).Resolve(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, st.Active.Number, "a rejection never changes the active version")
			if tc.wantShadow == 0 {
				require.Nil(t, st.Shadow)
			} else {
				require.EqualValues(t, tc.wantShadow, st.Shadow.Number)
			}
			if tc.wantErr == "" {
				require.Len(t, st.Rejected, len(tc.reject))
				for _, n := range tc.reject {
					require.Equal(t, "saves too little", st.Rejected[n].Reason)
				}
			}
		})
	}
}

func TestProposalIsKeptBesideItsVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := newFSStore(t)
	_, err := s.Proposal(ctx, 2)
	require.True(t, errors.Is(err, ErrNotFound), "%v", err)
	require.ErrorContains(t, s.SaveProposal(ctx, 2, []byte("not json")), "not JSON")
	require.NoError(t, s.SaveProposal(ctx, 2, []byte(`{"preview":{"totals":{"series_saved":20}}}`)))
	b, err := New(s.bkt).Proposal(ctx, 2)
	require.NoError(t, err)
	require.JSONEq(t, `{"preview":{"totals":{"series_saved":20}}}`, string(b))
}
