package ring

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func writeKey(t *testing.T, dir, name string) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	return path
}

// TestGossipEncryption: members sharing a key form a cluster; a node with
// the wrong key never joins it (and never shows up in anyone's ring); a
// node whose primary key is new but which still accepts the old one during
// a rotation joins.
func TestGossipEncryption(t *testing.T) {
	dir := t.TempDir()
	keyA, keyB, keyNew := writeKey(t, dir, "a.key"), writeKey(t, dir, "b.key"), writeKey(t, dir, "new.key")

	cfg0 := testConfig("ingester-0")
	cfg0.EncryptionKeyFile = keyA
	cfg0.EncryptionRotationKeyFiles = []string{keyNew}
	seed := startNode(t, cfg0, RoleIngester, "127.0.0.1:9301")

	cfgRogue := testConfig("rogue", seed.BindAddress())
	cfgRogue.EncryptionKeyFile = keyB
	rogue := startNode(t, cfgRogue, RoleIngester, "127.0.0.1:9302")

	cfgPlain := testConfig("plain", seed.BindAddress())
	plain := startNode(t, cfgPlain, RoleIngester, "127.0.0.1:9303")

	cfgRotated := testConfig("rotated", seed.BindAddress())
	cfgRotated.EncryptionKeyFile = keyNew
	cfgRotated.EncryptionRotationKeyFiles = []string{keyA}
	rotated := startNode(t, cfgRotated, RoleDistributor, "")

	require.Eventually(t, func() bool {
		_, ok := memberStates(seed.Ring)["rotated"]
		return ok && len(rotated.Members()) == 2
	}, converge, tick, "a member with the rotation key must join")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(rogue.metrics.joins.WithLabelValues("failure")) >= 3 &&
			testutil.ToFloat64(plain.metrics.joins.WithLabelValues("failure")) >= 3
	}, converge, tick)
	require.NotContains(t, memberStates(seed.Ring), "rogue")
	require.NotContains(t, memberStates(seed.Ring), "plain")
	require.Len(t, rogue.Members(), 1, "the rogue node sees only itself")
	require.Len(t, plain.Members(), 1, "an unencrypted node sees only itself")
}

func TestKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	require.NoError(t, os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString([]byte("tooshort"))), 0o600))
	notB64 := filepath.Join(dir, "bad.key")
	require.NoError(t, os.WriteFile(notB64, []byte("!!!"), 0o600))
	for name, tc := range map[string]struct {
		primary string
		want    string
	}{
		"missing file": {filepath.Join(dir, "nope"), "encryption_key_file"},
		"short key":    {short, "8 bytes"},
		"not base64":   {notB64, "not base64"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig("x")
			cfg.EncryptionKeyFile = tc.primary
			_, err := New(cfg, RoleDistributor, "", nil, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
