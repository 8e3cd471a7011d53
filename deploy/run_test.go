package deploy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promgov/promgov/internal/testport"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestChartCommandsRun runs a distributor (with its reloader sidecar) and
// an ingester with exactly the commands, flags, environment and
// configuration the chart renders, moved to loopback: each pod's ports are
// mapped to free ones, its volumes to directories, its join address to the
// other pod. The rendered readiness, liveness and startup probes answer
// 200, so they point at real endpoints on the right ports, and a change of
// the ConfigMap reaches the distributor through the sidecar without a
// restart.
func TestChartCommandsRun(t *testing.T) {
	requireHelm(t)
	objs := render(t, nil, "reload.interval=200ms")
	configMap := one[*corev1.ConfigMap](t, objs, configMapName).Data["promgov.yml"]
	dist := newLocalPod(t, "distributor-0", &one[*appsv1.Deployment](t, objs, distName).Spec.Template, configMap)
	ing := newLocalPod(t, "ingester-0", &one[*appsv1.StatefulSet](t, objs, ingesterName).Spec.Template, configMap)
	dist.join, ing.join = ing.gossip(t), dist.gossip(t)

	dist.start(t, "distributor", "reloader")
	ing.start(t, "ingester") // its reloader needs the ingester's /-/reload (issue 11)
	var probed []string
	for _, p := range []*localPod{ing, dist} {
		for _, c := range p.tpl.Spec.Containers {
			for kind, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				if probe == nil {
					continue
				}
				url := fmt.Sprintf("http://127.0.0.1:%d%s", p.portOf(t, &c, probe.HTTPGet.Port.String()), probe.HTTPGet.Path)
				require.Eventually(t, func() bool { return get(url) == http.StatusOK }, 30*time.Second, 50*time.Millisecond,
					"%s %s %s probe %s never answered 200", p.name, c.Name, kind, url)
				probed = append(probed, fmt.Sprintf("%s %s %s:%s", c.Name, kind, probe.HTTPGet.Port.String(), probe.HTTPGet.Path))
			}
		}
	}
	require.Len(t, probed, 6, "readiness, liveness and startup of both binaries")
	t.Logf("rendered probes answering 200: %s", strings.Join(probed, ", "))

	// The ConfigMap changes: one governance rule more.
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", dist.portOf(t, container(t, dist.tpl, "distributor"), "http-metrics"))
	require.Equal(t, 0.0, scrape(t, metrics, "promgov_rules_active"))
	updated := configMap + "rules:\n  - name: drop-debug\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: debug_.*\n        action: drop\n"
	dist.updateConfig(t, updated)
	require.Eventually(t, func() bool { return scrape(t, metrics, "promgov_rules_active") == 1 }, 10*time.Second, 50*time.Millisecond,
		"the distributor never applied the changed ConfigMap")
}

// localPod is a rendered pod moved to this machine.
type localPod struct {
	name      string
	tpl       *corev1.PodTemplateSpec
	dirs      map[string]string // mount path -> local directory
	ports     map[int32]int     // container port -> local port
	join      string
	configDir string
}

func newLocalPod(t *testing.T, name string, tpl *corev1.PodTemplateSpec, configMap string) *localPod {
	p := &localPod{name: name, tpl: tpl, dirs: map[string]string{}, ports: map[int32]int{}}
	for _, c := range tpl.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if _, ok := p.dirs[m.MountPath]; !ok {
				p.dirs[m.MountPath] = t.TempDir()
			}
		}
		for _, cp := range c.Ports {
			if _, ok := p.ports[cp.ContainerPort]; !ok {
				p.ports[cp.ContainerPort] = freePort(t)
			}
		}
	}
	for _, v := range tpl.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		for _, c := range tpl.Spec.Containers {
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name {
					p.configDir = p.dirs[m.MountPath]
				}
			}
		}
	}
	require.NotEmpty(t, p.configDir, "%s mounts no ConfigMap", name)
	p.updateConfig(t, configMap)
	return p
}

// updateConfig replaces promgov.yml atomically, as the kubelet does.
func (p *localPod) updateConfig(t *testing.T, content string) {
	tmp := filepath.Join(p.configDir, ".promgov.yml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(p.configDir, "promgov.yml")))
}

func (p *localPod) gossip(t *testing.T) string {
	for _, c := range p.tpl.Spec.Containers {
		if cp, ok := containerPort(&c, "gossip-tcp", corev1.ProtocolTCP); ok {
			return fmt.Sprintf("127.0.0.1:%d", p.ports[cp.ContainerPort])
		}
	}
	t.Fatalf("%s has no gossip port", p.name)
	return ""
}

func (p *localPod) portOf(t *testing.T, c *corev1.Container, port string) int {
	cp, ok := containerPort(c, port, corev1.ProtocolTCP)
	require.True(t, ok, "%s: no port %s", c.Name, port)
	return p.ports[cp.ContainerPort]
}

var hostPort = regexp.MustCompile(`^(\$\(POD_IP\)|0\.0\.0\.0|127\.0\.0\.1|)(:)(\d+)$`)

// args localizes a container's arguments: environment variables expanded,
// mount paths moved, every host:port of a pod port on loopback at its
// local port, and the join address replaced.
func (p *localPod) args(c *corev1.Container) []string {
	var out []string
	for _, a := range c.Args {
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			out = append(out, a)
			continue
		}
		if name == "--memberlist.join" {
			out = append(out, name+"="+p.join)
			continue
		}
		value = p.localPath(value)
		value = strings.ReplaceAll(value, "$(POD_NAME)", p.name)
		if u, rest, ok := strings.Cut(value, "://"); ok { // a URL: localize its host:port
			hp, path, _ := strings.Cut(rest, "/")
			value = u + "://" + p.localAddr(hp) + "/" + path
		} else {
			value = p.localAddr(value)
		}
		out = append(out, name+"="+value)
	}
	return out
}

// localPath moves a path under the longest mount path holding it.
func (p *localPod) localPath(s string) string {
	best := ""
	for mount := range p.dirs {
		if (s == mount || strings.HasPrefix(s, mount+"/")) && len(mount) > len(best) {
			best = mount
		}
	}
	if best == "" {
		return s
	}
	return p.dirs[best] + strings.TrimPrefix(s, best)
}

func (p *localPod) localAddr(s string) string {
	m := hostPort.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	n, _ := strconv.Atoi(m[3])
	if local, ok := p.ports[int32(n)]; ok {
		return fmt.Sprintf("127.0.0.1:%d", local)
	}
	return s
}

// start runs the named containers of the pod until the test ends.
func (p *localPod) start(t *testing.T, containers ...string) {
	for _, name := range containers {
		c := container(t, p.tpl, name)
		require.Len(t, c.Command, 1)
		logPath := filepath.Join(t.TempDir(), p.name+"-"+name+".log")
		f, err := os.Create(logPath)
		require.NoError(t, err)
		cmd := exec.Command(filepath.Join(binDir, filepath.Base(c.Command[0])), p.args(c)...)
		cmd.Stdout, cmd.Stderr = f, f
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = f.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				t.Logf("---- %s/%s: %v\n%s", p.name, name, cmd.Args, b)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	return testport.Port(t)
}

func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// scrape returns the value of an unlabelled metric.
func scrape(t *testing.T, url, name string) float64 {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("%s has no %s", url, name)
	return 0
}
