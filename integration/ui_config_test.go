package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// The governed cluster of the configuration and aggregation pages: a
// governance store (filesystem) shared by every node, aggregation rules,
// and authorisation on with an admin and a cluster-wide reader.
const (
	uiAggMetric = "ui_agg_requests_total"
	uiAggRule   = "requests-by-service"
	uiAdminUser = "admin"
	uiAdminPass = "admin-password"
	uiReaderTok = "0123456789abcdef0123456789abcdef-reader"
)

// uiGovCluster is the cluster and the Authorization headers of its
// identities.
type uiGovCluster struct {
	*cluster
	admin, reader string
}

// startUIGovCluster starts a backend, a distributor (authorisation on,
// governance store, aggregation rules known to the rules test API) and two
// ingesters on the same store and aggregation rules; extra are more
// distributor flags.
func startUIGovCluster(t *testing.T, extra ...string) *uiGovCluster {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	cfg := write("promgov.yml", uiRules+fmt.Sprintf(`
aggregations:
- {name: %s, match: %s, without: [pod], interval: 5s, max_delay: 2s}
`, uiAggRule, uiAggMetric))
	hash, err := bcrypt.GenerateFromPassword([]byte(uiAdminPass), bcrypt.MinCost)
	require.NoError(t, err)
	write("reader.token", uiReaderTok+"\n")
	authCfg := write("auth.yml", fmt.Sprintf(`identities:
  - name: admin
    basic_auth_user: %s
    password_hash: %q
    roles: [admin]
  - name: reader
    bearer_token_file: reader.token
    roles: [read]
    tenants: ["*"]
`, uiAdminUser, string(hash)))
	gov := []string{"--config.file=" + cfg, "--governance.store.backend=filesystem",
		"--governance.store.filesystem.directory=" + filepath.Join(dir, "governance"), "--governance.poll-interval=1s"}

	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	n := &node{name: "distributor", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"), append([]string{
		"--web.listen-address=" + n.webAddr,
		"--memberlist.bind-address=" + n.gossipAddr,
		"--memberlist.node-name=" + n.name,
		"--distributor.push-timeout=5s",
		"--auth.config-file=" + authCfg,
		"--ui.history-interval=1s",
		"--ui.snapshot-interval=1s",
	}, append(gov, extra...)...)...)
	c.distributor = n
	for range 2 {
		cardAddIngester(c, gov...)
	}
	g := &uiGovCluster{cluster: c, admin: "Basic " + base64.StdEncoding.EncodeToString([]byte(uiAdminUser+":"+uiAdminPass)),
		reader: "Bearer " + uiReaderTok}
	// The ingesters' ring (they serve it without authorisation) and the
	// distributor's rollout: every node on the seeded version 1.
	eventually(t, func(ct *assert.CollectT) bool {
		members, partitions := c.ringStatus(ct, c.ingesters[0])
		active, owned := 0, 0
		for _, m := range members {
			if m.Role == "ingester" && m.State == "ACTIVE" {
				active++
				owned += m.Partitions
			}
		}
		return active == 2 && owned == partitions && g.allOn(ct, 1)
	}, 30*time.Second, 200*time.Millisecond, "the cluster never formed on governance version 1")
	return g
}

// api calls the distributor's API as the identity of authz and decodes the
// envelope's data into out (unless nil); it answers the status.
func (g *uiGovCluster) api(t T, authz, method, path string, body []byte, hdr map[string]string, out any) int {
	req, err := http.NewRequest(method, g.distributor.url(path), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", authz)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(raw, &env), string(raw))
		require.NoError(t, json.Unmarshal(env.Data, out), string(raw))
	}
	return resp.StatusCode
}

// allOn reports whether every node of the cluster runs governance version v.
func (g *uiGovCluster) allOn(t T, v uint64) bool { return g.allOnShadow(t, v, 0, false) }

// allOnShadow is allOn that also wants shadow candidate sh on every node
// when checkShadow is set.
func (g *uiGovCluster) allOnShadow(t T, v, sh uint64, checkShadow bool) bool {
	var st govStatus
	if g.api(t, g.admin, http.MethodGet, "/promgov/api/v1/status/config", nil, nil, &st) != http.StatusOK {
		return false
	}
	if len(st.Nodes) != 1+len(g.ingesters) {
		return false
	}
	for _, n := range st.Nodes {
		if n.Version != v || checkShadow && n.Shadow != sh {
			return false
		}
	}
	return true
}

// putVersion writes a version as the admin.
func (g *uiGovCluster) putVersion(t *testing.T, ifMatch int, mode, body, msg string) {
	t.Helper()
	path := "/promgov/api/v1/config"
	if mode != "" {
		path += "?mode=" + mode
	}
	var meta struct {
		Version int `json:"version"`
	}
	code := g.api(t, g.admin, http.MethodPut, path, []byte(body), map[string]string{"If-Match": fmt.Sprint(ifMatch),
		"X-Promgov-User": "alice", "X-Promgov-Message": msg}, &meta)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, ifMatch+1, meta.Version)
}

// uiRulesWith is the UI cluster's rules with one more drop rule.
func uiRulesWith(name, regex string) string {
	return uiRules + "  - name: " + name + "\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: \"" + regex + "\"\n        action: drop\n"
}

// TestUIConfigAndAggregationInBrowser drives the configuration versions and
// aggregation pages in headless chromium against a cluster with a
// governance store, aggregation rules, real traffic and authorisation on:
// a cluster-wide reader sees the versions, the rollout and a diff but is
// offered no action and is refused one (403 naming the missing role); the
// admin promotes a shadow version and rolls back with the page's buttons,
// and every node runs the result; the aggregation page shows the series
// received and written per rule and what the running and a candidate rule
// do to a series (the candidate only for the admin).
func TestUIConfigAndAggregationInBrowser(t *testing.T) {
	b := newBrowser(t)
	g := startUIGovCluster(t)
	base := g.distributor.url("")

	g.putVersion(t, 1, "", uiRulesWith("drop-legacy", "legacy_.*"), "drop legacy metrics")
	g.putVersion(t, 2, "shadow", uiRulesWith("drop-candidate", "candidate_.*"), "candidate: drop candidate_ metrics")
	// Version 2 active and version 3 its shadow candidate on every node
	// (waiting for version 2 alone could end before the candidate arrives).
	eventually(t, func(ct *assert.CollectT) bool { return g.allOnShadow(ct, 2, 3, true) }, 30*time.Second, 200*time.Millisecond,
		"the cluster never ran version 2 with candidate 3")

	t.Run("reader sees versions, rollout and diff, and no action", func(t *testing.T) {
		b.as(g.reader)
		b.open(base + "/ui/config")
		main := b.text("main")
		assert.Contains(t, b.text("#active"), "Version 2 (enforce)")
		assert.Contains(t, b.text("#rollout-summary"), "All 3 nodes run version 2.")
		assert.Contains(t, b.text("#versions tbody"), "candidate: drop candidate_ metrics")
		assert.Contains(t, main, `Read-only: identity "reader" lacks the admin role this action needs`)
		assert.Zero(t, b.count("main button"), "no action is offered to a reader")
		b.shot("distributor-config-versions-reader")

		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`#versions a[href="/ui/config/diff?to=2"]`)), chromedp.WaitVisible(chromedp.CSS("#diff"))))
		assert.Contains(t, b.text("#diff .add"), "drop-legacy", "the diff of version 2 against 1 adds the rule")
		assert.Contains(t, b.text("h1"), "version 1 → 2")
		b.shot("distributor-config-diff")

		// A reader's promote or rollback is refused with the reason, and
		// changes nothing.
		for _, path := range []string{"/ui/config/rollback", "/ui/config/promote", "/promgov/api/v1/config/rollback"} {
			req, err := http.NewRequest(http.MethodPost, g.distributor.url(path), strings.NewReader("version=3&if_match=3"))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", g.reader)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, path)
			assert.Contains(t, string(body), "lacks the admin role", path)
		}
		var vs struct {
			Versions []any `json:"versions"`
		}
		require.Equal(t, http.StatusOK, g.api(t, g.reader, http.MethodGet, "/promgov/api/v1/config/versions", nil, nil, &vs))
		assert.Len(t, vs.Versions, 3, "the reader's refused actions wrote nothing")
	})

	t.Run("admin promotes the shadow version", func(t *testing.T) {
		b.as(g.admin)
		b.open(base + "/ui/config")
		b.shot("distributor-config-versions-admin")
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`button[aria-label="Promote version 3"]`)), chromedp.WaitVisible(chromedp.CSS("#written"))))
		assert.Contains(t, b.text("#written"), "Version 4 written by admin: promote version 3.")
		assert.Contains(t, b.text("#active"), "Version 4 (enforce)")
		eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 4) }, 30*time.Second, 200*time.Millisecond,
			"the cluster never ran the promoted version 4")
		var rs struct {
			Rules []struct {
				Name string `json:"name"`
			} `json:"rules"`
		}
		require.Equal(t, http.StatusOK, g.api(t, g.admin, http.MethodGet, "/promgov/api/v1/rules", nil, nil, &rs))
		assert.Equal(t, "drop-candidate", rs.Rules[len(rs.Rules)-1].Name, "the distributor runs the promoted rules")
		b.open(base + "/ui/config")
		assert.Contains(t, b.text("#rollout-summary"), "All 3 nodes run version 4.")
		b.shot("distributor-config-promoted")
	})

	t.Run("admin rolls back", func(t *testing.T) {
		require.NoError(t, b.run(
			chromedp.SetValue(chromedp.CSS("#rollback-message"), "candidate dropped too much"),
			chromedp.Click(chromedp.CSS("#rollback-previous button")),
			chromedp.WaitVisible(chromedp.CSS("#written")),
		))
		assert.Contains(t, b.text("#written"), "Version 5 written by admin: rollback to version 2: candidate dropped too much.")
		eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 5) }, 30*time.Second, 200*time.Millisecond,
			"the cluster never ran the rolled-back version 5")
		b.open(base + "/ui/config/diff?from=4&to=5")
		assert.Contains(t, b.text("#diff .del"), "drop-candidate", "the rollback removes the promoted rule")
		b.shot("distributor-config-rolled-back")
		b.open(base + "/")
		assert.Contains(t, b.text("#config-version"), "v5")
		assert.Contains(t, b.text("#config-version"), "configuration version, on all 3 nodes", "the overview shows the active version")
	})

	t.Run("aggregation", func(t *testing.T) {
		// 5 pods over 2 services, each sample a counter (RW 2.0 metadata).
		gen := &aggGen{counter: uiAggMetric, pods: 6, countersOnly: true}
		hdr := map[string]string{"X-Scope-OrgID": uiTenant, "Authorization": g.admin}
		send := func() {
			eventually(t, func(ct *assert.CollectT) bool {
				code, _, _ := postRW(ct, g.writeURL(), contentTypeV2, gen.body(t, time.Now()), hdr)
				return code == http.StatusNoContent
			}, 20*time.Second, 200*time.Millisecond, "the aggregated counter was never accepted")
			gen.step++
		}
		send()
		b.as(g.reader)
		eventually(t, func(ct *assert.CollectT) bool {
			b.open(base + "/ui/aggregation")
			return strings.Contains(b.text("#agg-metrics tbody"), uiAggMetric)
		}, 30*time.Second, 500*time.Millisecond, "the aggregation page never listed %s", uiAggMetric)
		row := b.text("#agg-rules tbody")
		assert.Contains(t, row, uiAggRule+"\t1\t5\t2\t60%", "per rule: 1 input metric, 5 series received, 2 written")
		assert.Equal(t, "60%", b.text("#agg-reduction"))
		b.shot("distributor-aggregation")

		// What the running rule does to a series, for the reader.
		assert.Contains(t, b.text("#candidate-read-only"), `identity "reader" lacks the admin role`)
		assert.Zero(t, b.count("#candidate"), "a reader is not offered candidate rules")
		require.NoError(t, b.run(
			chromedp.SetValue(chromedp.CSS("#series"), uiAggMetric+`{pod="p1",service="a"}`),
			chromedp.SetValue(chromedp.CSS("#tenant"), uiTenant),
			chromedp.Click(chromedp.CSS("form.test button")),
			chromedp.WaitVisible(chromedp.CSS("#test-result")),
		))
		res := b.text("#test-result")
		assert.Contains(t, res, "aggregated by "+uiAggRule+" (enforce, every 5s) into")
		assert.Contains(t, res, uiAggMetric+`:sum_without_pod`)
		b.shot("distributor-aggregation-test")

		// A candidate, for the admin.
		b.as(g.admin)
		b.open(base + "/ui/aggregation")
		require.NoError(t, b.run(
			chromedp.SetValue(chromedp.CSS("#series"), uiAggMetric+`{pod="p1",service="a"}`+"\n"+uiDropped+`{job="x"}`),
			chromedp.SetValue(chromedp.CSS("#tenant"), uiTenant),
			chromedp.SetValue(chromedp.CSS("#candidate"), "aggregations:\n- {name: by-service, match: "+uiAggMetric+", by: [service], interval: 1m}\n"),
			chromedp.Click(chromedp.CSS("form.test button")),
			chromedp.WaitVisible(chromedp.CSS("#test-result")),
		))
		res = b.text("#test-result")
		assert.Contains(t, res, "Candidate configuration")
		assert.Contains(t, res, "aggregated by by-service (enforce, every 1m) into")
		assert.Contains(t, res, "service:"+uiAggMetric+":sum")
		assert.Contains(t, res, "dropped by drop-debug", "the active rules run before the candidate")
		b.shot("distributor-aggregation-candidate")

		// A reader POSTing a candidate is refused (the route needs admin).
		code := g.api(t, g.reader, http.MethodPost, "/ui/aggregation", []byte(url.Values{"series": {uiAggMetric + "{}"}, "candidate": {"aggregations: []"}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, nil)
		assert.Equal(t, http.StatusForbidden, code)
	})
}
