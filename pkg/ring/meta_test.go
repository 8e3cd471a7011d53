package ring

import (
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := map[string]struct {
		role  Role
		state State
		grpc  string
	}{
		"joining ingester":    {RoleIngester, StateJoining, "10.0.0.1:9095"},
		"active ingester":     {RoleIngester, StateActive, "[::1]:9095"},
		"leaving ingester":    {RoleIngester, StateLeaving, "ingester-0.ingester:9095"},
		"distributor":         {RoleDistributor, StateActive, ""},
		"leaving distributor": {RoleDistributor, StateLeaving, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := EncodeMeta(tc.role, tc.state, tc.grpc)
			require.NoError(t, err)
			require.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
			role, state, grpc, err := DecodeMeta(b)
			require.NoError(t, err)
			require.Equal(t, tc.role, role)
			require.Equal(t, tc.state, state)
			require.Equal(t, tc.grpc, grpc)
		})
	}
}

func TestEncodeMetaErrors(t *testing.T) {
	tests := map[string]struct {
		role  Role
		state State
		grpc  string
	}{
		"unknown role":     {Role("querier"), StateActive, "a:1"},
		"unknown state":    {RoleIngester, State("PENDING"), "a:1"},
		"address too long": {RoleIngester, StateActive, strings.Repeat("a", memberlist.MetaMaxSize) + ":1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeMeta(tc.role, tc.state, tc.grpc)
			require.ErrorIs(t, err, ErrInvalidMeta)
		})
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	tests := map[string]string{
		"empty":                 "",
		"not json":              "ingester",
		"wrong version":         `{"v":2,"r":"ingester","s":"ACTIVE","g":"a:1"}`,
		"unknown role":          `{"v":1,"r":"querier","s":"ACTIVE"}`,
		"unknown state":         `{"v":1,"r":"ingester","s":"active","g":"a:1"}`,
		"ingester without grpc": `{"v":1,"r":"ingester","s":"ACTIVE"}`,
		"too long":              `{"v":1,"r":"distributor","s":"ACTIVE","x":"` + strings.Repeat("x", memberlist.MetaMaxSize) + `"}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := DecodeMeta([]byte(in))
			require.ErrorIs(t, err, ErrInvalidMeta)
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"r":"ingester","s":"ACTIVE","g":"10.0.0.1:9095"}`,
		`{"v":1,"r":"distributor","s":"JOINING"}`,
		`{"v":1}`, `null`, `[]`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		role, state, grpc, err := DecodeMeta(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidMeta)
			return
		}
		require.True(t, role.Valid())
		require.True(t, state.Valid())
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := EncodeMeta(role, state, grpc)
		require.NoError(t, err)
		r2, s2, g2, err := DecodeMeta(again)
		require.NoError(t, err)
		require.Equal(t, []any{role, state, grpc}, []any{r2, s2, g2})
	})
}
