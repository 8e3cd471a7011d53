package usage

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzDecodeAccess(f *testing.F) {
	s := fileStats(f)
	f.Add(envelopeOf(f, s.Snapshot().Data()))
	f.Add(envelopeOf(f, AccessSnapshot{}.Data()))
	f.Add([]byte(`{"status":"success","data":{"metrics":[{"name":"up","count":1,"last":"2026-01-01T00:00:00+00:00"},{"name":"up","count":2,"users":["a","a",""]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"patterns":[{"regex":"(","negative":true,"count":1,"last":"2026-01-01T01:00:00.123456789+01:00"},{"regex":"(","labels":["b","a"]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"metrics":[{"name":"up","regex":"x"}]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"use GET"}`))
	f.Add([]byte(`{"status":"success","data":null}`))
	f.Add([]byte(`not json`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, body []byte) {
		snap, err := DecodeAccess(body)
		if err != nil {
			require.True(t, snap.Empty())
			return
		}
		d := snap.Data()
		again, err := DecodeAccess(envelopeOf(t, d))
		require.NoError(t, err)
		require.Equal(t, normalizeData(d), normalizeData(again.Data()))
	})
}

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
