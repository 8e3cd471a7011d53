package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uiTenantIsolation: with authorisation on, a tenant-scoped reader (read,
// tenants [a]) opens the web UI of a distributor and an ingester and sees
// tenant a's metrics only: never tenant b's, never the cluster-wide parts
// (ring, nodes, every tenant's traffic, rules, usage); asking for b is
// 403. The admin sees both tenants. Writer A's writes happened before.
func uiTenantIsolation(t *testing.T, c *secureCluster, d *node) {
	e := c.env
	now := time.Now()
	code, _, body := send(t, c.anon, http.MethodPost, "https://"+d.webAddr+"/api/v1/write", rwBody(t, "sec_b_secret", 3, now), withBasicAuth(writerBUser, writerBPass))
	require.Equal(t, http.StatusNoContent, code, body)
	offenders := "/ui/offenders"
	eventually(t, func(ct *assert.CollectT) bool {
		code, _, body := send(t, c.ops, http.MethodGet, "https://"+d.webAddr+offenders, nil, nil)
		return code == http.StatusOK && strings.Contains(body, "sec_b_secret") && strings.Contains(body, "sec_a_default")
	}, 30*time.Second, 200*time.Millisecond, "the admin's UI never showed both tenants' metrics")

	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+e.readerToken) }
	for _, n := range []*node{d, c.ingester} {
		base := "https://" + n.webAddr
		for _, page := range []string{"/", offenders, "/ui/metric?name=sec_a_default"} {
			code, _, body := send(t, c.anon, http.MethodGet, base+page, nil, bearer)
			require.Equal(t, http.StatusOK, code, "%s%s: %s", n.name, page, body)
			require.NotContains(t, body, "sec_b_secret", "%s%s shows tenant b's metric", n.name, page)
			require.NotContains(t, body, "tenant=b", "%s%s links tenant b", n.name, page)
			require.NotContains(t, body, "Cluster health", "%s%s shows the cluster's health", n.name, page)
			require.NotContains(t, body, "Who reads it", "%s%s shows the cluster's usage", n.name, page)
		}
		// Top offenders reads the UI's ranked snapshot, up to one refresh
		// (--ui.snapshot-interval) behind the tracker.
		eventually(t, func(ct *assert.CollectT) bool {
			code, _, body := send(ct, c.anon, http.MethodGet, base+offenders, nil, bearer)
			return code == http.StatusOK && strings.Contains(body, "sec_a_default")
		}, time.Minute, 500*time.Millisecond, "%s: reader A does not see its own tenant's metrics", n.name)
		for _, page := range []string{offenders + "?tenant=b", "/ui/metric?name=sec_b_secret&tenant=b", "/?tenant=b", "/metrics"} {
			code, _, body := send(t, c.anon, http.MethodGet, base+page, nil, bearer)
			require.Equal(t, http.StatusForbidden, code, "%s%s: %s", n.name, page, body)
		}
		code, _, body := send(t, c.anon, http.MethodGet, base+"/ui/static/ui.css", nil, bearer)
		require.Equal(t, http.StatusOK, code, body)
		code, _, _ = send(t, c.anon, http.MethodGet, base+"/", nil, nil)
		require.Equal(t, http.StatusUnauthorized, code, "the UI needs a credential")
	}
	for _, page := range []string{"/ui/usage", "/ui/rules"} {
		code, _, body := send(t, c.anon, http.MethodGet, "https://"+d.webAddr+page, nil, bearer)
		require.Equal(t, http.StatusForbidden, code, "%s: %s", page, body)
	}
	code, _, body = send(t, c.ops, http.MethodGet, "https://"+d.webAddr+"/", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "Cluster health", "the admin sees the cluster")
}
