package deploy

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/promgov/promgov/internal/testcerts"
	"github.com/promgov/promgov/pkg/config"
)

// securityValues turns on every security part of the chart.
const securityValues = `
security:
  webConfig: {secret: pg-web, tls: true}
  auth: {secret: pg-identities}
  grpcTLS: {secret: pg-grpc-tls, serverName: promgov-ingester}
  gossip: {secret: pg-gossip, rotationKeys: [old-key]}
reload: {enabled: false}
`

// TestChartSecurity renders the chart with every security part on: each
// Secret is mounted on every pod where the flags point, the probes use
// HTTPS, the ingesters serve gRPC with TLS, and the binaries accept the
// rendered flags with real files in place of the Secrets.
func TestChartSecurity(t *testing.T) {
	requireHelm(t)
	valuesFile := filepath.Join(t.TempDir(), "security.yaml")
	require.NoError(t, os.WriteFile(valuesFile, []byte(securityValues), 0o644))
	objs := render(t, []string{valuesFile})

	secrets := map[string]string{"web": "pg-web", "auth": "pg-identities", "grpc-tls": "pg-grpc-tls", "gossip": "pg-gossip"}
	local := securityFiles(t)
	for name, tpl := range podTemplates(objs) {
		role, cname := config.RoleDistributor, "distributor"
		if name == "StatefulSet/"+ingesterName {
			role, cname = config.RoleIngester, "ingester"
		}
		c := container(t, tpl, cname)
		t.Run(cname, func(t *testing.T) {
			require.Equal(t, "/etc/promgov/web/web.yml", flagValue(c.Args, "web.config.file"))
			require.Equal(t, "/etc/promgov/auth/identities.yml", flagValue(c.Args, "auth.config-file"))
			require.Contains(t, c.Args, "--ingester.client.tls-enabled")
			require.Equal(t, "/etc/promgov/grpc-tls/ca.crt", flagValue(c.Args, "ingester.client.tls-ca-path"))
			require.Equal(t, "promgov-ingester", flagValue(c.Args, "ingester.client.tls-server-name"))
			require.Equal(t, "/etc/promgov/gossip/key", flagValue(c.Args, "memberlist.encryption-key-file"))
			require.Equal(t, "/etc/promgov/gossip/old-key", flagValue(c.Args, "memberlist.encryption-rotation-key-files"))
			if role == config.RoleIngester {
				require.Equal(t, "/etc/promgov/grpc-tls/tls.crt", flagValue(c.Args, "grpc.tls-cert-path"))
			} else {
				require.Empty(t, flagValue(c.Args, "grpc.tls-cert-path"), "distributors serve no gRPC")
			}
			for part, secret := range secrets {
				requireSecretMount(t, tpl, c, "/etc/promgov/"+part, secret)
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				require.Equal(t, corev1.URISchemeHTTPS, p.HTTPGet.Scheme)
			}
			var args []string
			for _, a := range c.Args {
				args = append(args, strings.ReplaceAll(a, "/etc/promgov/", local+"/"))
			}
			cfg := renderedConfig(t, objs, role, args)
			require.NotEmpty(t, cfg.Base().Web.ConfigFile)
		})
	}

	// Off by default: no flag, no mount.
	for _, tpl := range podTemplates(render(t, nil)) {
		for _, c := range tpl.Spec.Containers {
			for _, a := range c.Args {
				require.NotContains(t, a, "tls", "%s: a security flag without its values: %s", c.Name, a)
				require.NotContains(t, a, "encryption-key", "%s: a security flag without its values: %s", c.Name, a)
			}
		}
	}
}

// requireSecretMount: c mounts dir from a volume of secret.
func requireSecretMount(t *testing.T, tpl *corev1.PodTemplateSpec, c *corev1.Container, dir, secret string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range tpl.Spec.Volumes {
			if v.Name == m.Name {
				require.NotNil(t, v.Secret, "%s: %s is not a Secret volume", c.Name, dir)
				require.Equal(t, secret, v.Secret.SecretName)
				return
			}
		}
	}
	t.Fatalf("%s: nothing mounted at %s", c.Name, dir)
}

// securityFiles writes what the Secrets would hold under a directory laid
// out as /etc/promgov/ is in the pods, and returns it.
func securityFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"web", "auth", "grpc-tls", "gossip"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, sub), 0o755))
	}
	ca, err := testcerts.NewCA(t.TempDir(), "chart")
	require.NoError(t, err)
	pair, err := ca.Server("member")
	require.NoError(t, err)
	copyTo := func(from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, to), b, 0o600))
	}
	copyTo(pair.CertFile, "web/tls.crt")
	copyTo(pair.KeyFile, "web/tls.key")
	copyTo(pair.CertFile, "grpc-tls/tls.crt")
	copyTo(pair.KeyFile, "grpc-tls/tls.key")
	copyTo(ca.CertFile, "grpc-tls/ca.crt")
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("web/web.yml", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n")
	write("auth/token", "0123456789abcdef0123456789abcdef\n")
	write("auth/identities.yml", "identities:\n  - name: grafana\n    bearer_token_file: token\n    roles: [read]\n    tenants: [\"*\"]\n")
	for _, k := range []string{"gossip/key", "gossip/old-key"} {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		require.NoError(t, err)
		write(k, base64.StdEncoding.EncodeToString(b)+"\n")
	}
	return dir
}

// TestChartRefusesReloaderBehindSecurity: the reloader sidecar speaks plain
// HTTP without credentials, so with a web config or identities its
// /-/reload would fail on every ConfigMap change; the chart refuses the
// combination with a message naming the fix instead of rendering a sidecar
// that cannot work.
func TestChartRefusesReloaderBehindSecurity(t *testing.T) {
	requireHelm(t)
	tests := map[string][]string{
		"web TLS":    {"security.webConfig.secret=pg-web", "security.webConfig.tls=true"},
		"basic auth": {"security.webConfig.secret=pg-web"},
		"identities": {"security.auth.secret=pg-identities"},
	}
	for name, sets := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion, "--set", "reload.enabled=true"}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helmBin, args...).CombinedOutput()
			require.Error(t, err, "rendered a reloader that cannot reach /-/reload:\n%s", out)
			require.Contains(t, string(out), "reload.enabled=false")
		})
	}
}
