package usage

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzAccessFile(f *testing.F) {
	s := fileStats(f)
	af := accessFile{Version: accessFileVersion, Tenants: map[string]AccessData{}}
	for t, snap := range s.TenantSnapshots() {
		af.Tenants[t] = snap.Data()
	}
	valid, err := json.Marshal(af)
	require.NoError(f, err)
	f.Add(valid)
	f.Add([]byte(`{"version":1,"tenants":{}}`))
	f.Add([]byte(`{"version":1,"tenants":{"a":{"metrics":[{"name":"up"},{"name":"up","count":3}]},"b":null}}`))
	f.Add([]byte(`{"version":1,"tenants":{"a":{"patterns":[{"name":"x"}]}}}`))
	f.Add([]byte(`{"version":2,"tenants":{}}`))
	f.Add([]byte(`{"version":1,"tenants":`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, b []byte) {
		tenants, err := decodeAccessFile(b)
		if err != nil {
			require.Nil(t, tenants)
			return
		}
		// What decodes loads, and writes back to the same statistics.
		st := NewAccessStats(1<<20, 1<<20)
		for tenant, snap := range tenants {
			require.Zero(t, st.MergeTenant(tenant, snap))
		}
		out := accessFile{Version: accessFileVersion, Tenants: map[string]AccessData{}}
		for tenant, snap := range st.TenantSnapshots() {
			out.Tenants[tenant] = snap.Data()
		}
		enc, err := json.Marshal(out)
		require.NoError(t, err)
		again, err := decodeAccessFile(enc)
		require.NoError(t, err)
		require.Len(t, again, len(tenants))
		for tenant, snap := range tenants {
			require.Contains(t, again, tenant)
			require.Equal(t, normalizeData(snap.Data()), normalizeData(again[tenant].Data()), "tenant %q", tenant)
		}
	})
}
