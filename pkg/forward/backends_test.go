package forward

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/wal"
)

// decodeBackends decodes a "backends:" document strictly, as pkg/config does.
func decodeBackends(t *testing.T, doc string) ([]BackendConfig, error) {
	t.Helper()
	var out struct {
		Backends []BackendConfig `yaml:"backends"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(&out)
	return out.Backends, err
}

func TestBackendsYAML(t *testing.T) {
	got, err := decodeBackends(t, `
backends:
  - name: mimir
    url: https://mimir.example:8080/api/v1/push
    headers: {X-Team: platform}
    tenants: [team-a, team-b]
    basic_auth: {username: promgov, password_file: secrets/mimir}
    tls_config: {ca_file: ca.pem, server_name: mimir.internal}
    proxy_url: http://proxy.example:3128
  - name: vm
    url: http://vm:8428/api/v1/write
    protocol: 1
    authorization: {credentials_file: /etc/vm-token}
`)
	require.NoError(t, err)
	require.Len(t, got, 2)
	m, vm := got[0], got[1]
	require.Equal(t, "mimir", m.Name)
	require.Equal(t, ProtocolV2, m.Protocol, "defaults apply to every entry")
	require.Equal(t, 30*time.Second, m.Timeout)
	require.Equal(t, "X-Scope-OrgID", m.TenantHeader)
	require.True(t, m.HTTP.FollowRedirects)
	require.Equal(t, map[string]string{"X-Team": "platform"}, m.Headers)
	require.Equal(t, []string{"team-a", "team-b"}, m.Tenants)
	require.Equal(t, "promgov", m.HTTP.BasicAuth.Username)
	require.Equal(t, "secrets/mimir", m.HTTP.BasicAuth.PasswordFile)
	require.Equal(t, "mimir.internal", m.HTTP.TLSConfig.ServerName)
	require.Equal(t, "http://proxy.example:3128", m.HTTP.ProxyURL.String())
	require.Equal(t, ProtocolV1, vm.Protocol)
	require.Equal(t, "/etc/vm-token", vm.HTTP.Authorization.CredentialsFile)

	resolved, err := ResolveBackends(BackendConfig{}, got)
	require.NoError(t, err)
	require.Equal(t, "Bearer", resolved[1].HTTP.Authorization.Type)

	m.HTTP.SetDirectory("/etc/promgov")
	require.Equal(t, "/etc/promgov/secrets/mimir", m.HTTP.BasicAuth.PasswordFile, "relative to the configuration file")
}

func TestBackendsYAMLRefusesUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"top level": "backends:\n  - name: a\n    url: http://a/w\n    basic_auht: {username: u}\n",
		"nested":    "backends:\n  - name: a\n    url: http://a/w\n    basic_auth: {usernme: u}\n",
		"relabel":   "backends:\n  - name: a\n    url: http://a/w\n    write_relabel_configs: [{action: drop, regx: x}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeBackends(t, doc)
			require.ErrorContains(t, err, "not found")
		})
	}
}

func TestBackendsYAMLWriteRelabel(t *testing.T) {
	got, err := decodeBackends(t, `
backends:
  - name: a
    url: http://a/w
    write_relabel_configs:
      - source_labels: [__name__]
        regex: "go_.*"
        action: drop
      - regex: pod
        action: labeldrop
`)
	require.NoError(t, err)
	resolved, err := ResolveBackends(BackendConfig{}, got)
	require.NoError(t, err)
	rc := resolved[0].WriteRelabelConfigs
	require.Len(t, rc, 2)
	require.Equal(t, relabel.Drop, rc[0].Action)
	require.Equal(t, "go_.*", rc[0].Regex.String())
	require.Equal(t, relabel.LabelDrop, rc[1].Action)

	_, err = decodeBackends(t, "backends:\n  - name: a\n    url: http://a/w\n    write_relabel_configs: [{action: drop, regex: \"(\"}]\n")
	require.ErrorContains(t, err, "error parsing regexp")
}

func TestResolveBackends(t *testing.T) {
	ok := func(name string) BackendConfig {
		b := DefaultBackendConfig()
		b.Name, b.URL = name, "http://"+name+":9090/api/v1/write"
		return b
	}
	with := func(b BackendConfig, mutate func(*BackendConfig)) BackendConfig {
		mutate(&b)
		return b
	}
	tests := map[string]struct {
		single BackendConfig
		list   []BackendConfig
		want   string // error substring; "" for success
		names  []string
	}{
		"single":                 {single: ok(""), names: []string{"default"}},
		"single missing url":     {single: DefaultBackendConfig(), want: "backend.url: required"},
		"list":                   {list: []BackendConfig{ok("a"), ok("b")}, names: []string{"a", "b"}},
		"both":                   {single: ok("x"), list: []BackendConfig{ok("a")}, want: "backend.url and backends are both set"},
		"missing name":           {list: []BackendConfig{ok("")}, want: "backends[0].name"},
		"bad name":               {list: []BackendConfig{ok("a/b")}, want: "backends[0].name"},
		"duplicate name":         {list: []BackendConfig{ok("a"), ok("a")}, want: "backends[1].name: \"a\" is used twice"},
		"entry error names path": {list: []BackendConfig{ok("a"), with(ok("b"), func(b *BackendConfig) { b.Protocol = 3 })}, want: "backends[1].protocol"},
		"reserved header": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) { b.Headers = map[string]string{"content-type": "x"} })},
			want: "backends[0].headers: \"content-type\""},
		"tenant header as header": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) { b.Headers = map[string]string{"X-Scope-OrgID": "t"} })},
			want: "is the tenant header"},
		"fixed tenant without tenant header": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) {
			b.TenantHeader, b.Headers = "", map[string]string{"X-Scope-OrgID": "t"}
		})}, names: []string{"a"}},
		"empty tenant": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) { b.Tenants = []string{""} })}, want: "backends[0].tenants[0]"},
		"relabel entry names path": {list: []BackendConfig{ok("a"), with(ok("b"), func(b *BackendConfig) {
			b.WriteRelabelConfigs = []*relabel.Config{{Action: relabel.Drop, Regex: relabel.MustNewRegexp("x")}, {Action: relabel.Replace}}
		})}, want: "backends[1].write_relabel_configs[1]: relabel configuration for replace action requires 'target_label' value"},
		"empty relabel entry": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) { b.WriteRelabelConfigs = []*relabel.Config{nil} })},
			want: "backends[0].write_relabel_configs[0]: empty entry"},
		"relabel without action": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) { b.WriteRelabelConfigs = []*relabel.Config{{}} })},
			want: "backends[0].write_relabel_configs[0]: relabel action cannot be empty"},
		"relabel ok": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) {
			c := relabel.DefaultRelabelConfig
			c.Action, c.Regex = relabel.LabelDrop, relabel.MustNewRegexp("pod")
			b.WriteRelabelConfigs = []*relabel.Config{&c}
		})}, names: []string{"a"}},
		"two auth methods": {list: []BackendConfig{with(ok("a"), func(b *BackendConfig) {
			b.HTTP.BasicAuth = &config.BasicAuth{Username: "u"}
			b.HTTP.Authorization = &config.Authorization{Credentials: "t"}
		})}, want: "at most one of basic_auth, oauth2 & authorization"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ResolveBackends(tc.single, tc.list)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, b := range got {
				names = append(names, b.Name)
			}
			require.Equal(t, tc.names, names)
		})
	}
}

func TestClientSendsConfiguredCredentialsAndHeaders(t *testing.T) {
	recv := newReceiver(t, modeV2)
	secret := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(secret, []byte("first\n"), 0o600))
	cfg := DefaultBackendConfig()
	cfg.Name, cfg.URL = "auth", recv.url()
	cfg.Headers = map[string]string{"X-Team": "platform"}
	cfg.HTTP.BasicAuth = &config.BasicAuth{Username: "promgov", PasswordFile: secret}
	c, err := NewClient(cfg, nil, nil)
	require.NoError(t, err)
	defer c.Close(context.Background())

	send := func() {
		b := floatBatch("team-a", 0, 2, 1000)
		require.NoError(t, c.Send(context.Background(), b.Tenant, &b.Request, nil))
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	send()
	// The password file is read again when it changes (rotated secrets).
	require.NoError(t, os.WriteFile(secret, []byte("second\n"), 0o600))
	send()
	reqs, _ := recv.snapshot()
	require.Len(t, reqs, 2)
	require.Equal(t, basic("promgov", "first"), reqs[0].header.Get("Authorization"))
	require.Equal(t, basic("promgov", "second"), reqs[1].header.Get("Authorization"))
	for _, r := range reqs {
		require.Equal(t, "platform", r.header.Get("X-Team"))
		require.Equal(t, "team-a", r.tenant)
		requireHeaders(t, r)
	}
}

// TestBackendsAreIndependent forwards one WAL to two backends, one of them
// down: the other receives everything meanwhile, the WAL keeps what the
// slow one still needs, each keeps its own position across a restart, and
// once the slow one is back it receives everything too.
func TestBackendsAreIndependent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := openTestWAL(t, dir)
	up := newReceiver(t, modeV2)
	down := newRecorder(t, 0)
	setDown := down.failWith(http.StatusServiceUnavailable)
	setDown(true)

	backend := func(name, url string) BackendConfig {
		b := DefaultBackendConfig()
		b.Name, b.URL, b.Timeout = name, url, 5*time.Second
		return b
	}
	backends := []BackendConfig{backend("up", up.url()), backend("down", down.url())}
	cfg := walTestConfig()
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 20*time.Millisecond
	start := func(w *wal.WAL) (*Backends, *prometheus.Registry, func()) {
		reg := prometheus.NewRegistry()
		b, err := NewBackends(cfg, backends, w, dir, nil, reg)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := b.Run(ctx); err != nil {
				t.Errorf("run: %v", err)
			}
		})
		return b, reg, func() { cancel(); wg.Wait() }
	}
	sentTo := func(reg *prometheus.Registry, backend string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "promgov_forward_sent_samples_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "backend" && l.GetValue() == backend {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}

	var batches []Batch
	var end wal.Position
	for i := range 20 {
		b := floatBatch("t", 0, 10, int64(1000*(i+1)))
		batches = append(batches, b)
		end = appendBatch(t, w, b)
	}
	_, reg, stop := start(w)
	require.Eventually(t, func() bool { return sentTo(reg, "up") == 200 }, 10*time.Second, time.Millisecond,
		"the healthy backend received everything while the other was down")
	_, got := up.snapshot()
	require.Equal(t, expected(batches...), got)
	// The sent counter moves before the position file is written.
	require.Eventually(t, func() bool {
		pos, ok, err := readPosition(filepath.Join(dir, "forward-up.position"))
		require.NoError(t, err)
		return ok && pos == end
	}, 10*time.Second, time.Millisecond, "the healthy backend's position file reaches the end")
	require.True(t, w.Checkpoint().Before(end), "the WAL keeps what the down backend has not received")
	stop()
	require.NoError(t, w.Close(context.Background()))

	// Restart: the healthy backend starts at its own position and sends
	// nothing again; the other still gets everything once it is back.
	w = openTestWAL(t, dir)
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	setDown(false)
	_, reg, stop = start(w)
	defer stop()
	// At the end, or at the start of the next segment: a sealed segment
	// committed to its end is released (wal: a full disk recovers).
	require.Eventually(t, func() bool { return !w.Checkpoint().Before(end) }, 10*time.Second, time.Millisecond,
		"the WAL checkpoint follows the slowest backend to the end")
	_, got = down.snapshot()
	require.Equal(t, expected(batches...), got)
	require.Zero(t, sentTo(reg, "up"), "the healthy backend resumed at its own position")
	require.Equal(t, 200.0, sentTo(reg, "down"))
	require.Positive(t, testutil.CollectAndCount(reg, "promgov_forward_shards"))
}

func TestBackendsRouteTenants(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	a, b := newReceiver(t, modeV2), newReceiver(t, modeV2)
	ba, bb := DefaultBackendConfig(), DefaultBackendConfig()
	ba.Name, ba.URL, ba.Tenants = "a", a.url(), []string{"team-a"}
	bb.Name, bb.URL = "all", b.url()
	fwd, err := NewBackends(walTestConfig(), []BackendConfig{ba, bb}, w, t.TempDir(), nil, nil)
	require.NoError(t, err)
	teamA, teamB := floatBatch("team-a", 0, 10, 1000), floatBatch("team-b", 0, 10, 1000)
	appendBatch(t, w, teamA)
	end := appendBatch(t, w, teamB)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fwd.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	require.Eventually(t, func() bool { return w.Checkpoint() == end }, 10*time.Second, time.Millisecond)
	reqsA, gotA := a.snapshot()
	require.Equal(t, expected(teamA), gotA, "only team-a's data")
	for _, r := range reqsA {
		require.Equal(t, "team-a", r.tenant)
	}
	_, gotB := b.snapshot()
	require.Equal(t, 20, gotB.samples(), "every tenant")
}

func FuzzPositionFile(f *testing.F) {
	f.Add([]byte("promgov-forward-position 3 4096\n"))
	f.Add([]byte("promgov-forward-position -1 0\n"))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "forward-x.position")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		pos, ok, err := readPosition(path)
		if err != nil || !ok {
			require.False(t, ok)
			return
		}
		require.GreaterOrEqual(t, pos.Segment, 0)
		require.GreaterOrEqual(t, pos.Offset, int64(0))
		require.NoError(t, writePosition(path, pos))
		again, ok, err := readPosition(path)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, pos, again)
	})
}
