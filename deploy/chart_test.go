package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
)

// Names of the rendered objects for release "pg".
const (
	fullname       = release + "-promgov"
	ingesterName   = fullname + "-ingester"
	distName       = fullname + "-distributor"
	gossipSvc      = fullname + "-gossip"
	configMapName  = fullname + "-config"
	imageUser      = 65532 // the image's nonroot user (deploy/image)
	webShutdownMax = 10    // --web.shutdown-timeout default, seconds
)

func TestChartLint(t *testing.T) {
	requireHelm(t)
	for name, files := range map[string][]string{"default values": nil, "production example": {productionEx}} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			for _, f := range files {
				args = append(args, "--values", f)
			}
			out := helm(t, args...)
			require.Contains(t, out, "0 chart(s) failed")
		})
	}
}

// TestStrictDecoding shows the decoder the chart tests rely on refuses what
// Kubernetes would refuse or silently ignore.
func TestStrictDecoding(t *testing.T) {
	dec := newStrictDecoder(t)
	tests := map[string]struct {
		manifest string
		wantErr  string
	}{
		"valid":         {manifest: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: None}\n"},
		"unknown field": {manifest: "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a}\nspec: {podManagmentPolicy: Parallel}\n", wantErr: `unknown field "spec.podManagmentPolicy"`},
		"duplicate":     {manifest: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: None, clusterIP: None}\n", wantErr: `"clusterIP" already set`},
		"unknown kind":  {manifest: "apiVersion: v1\nkind: Servce\nmetadata: {name: a}\n", wantErr: "no kind"},
		"wrong type":    {manifest: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: http}]}\n", wantErr: "port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeAll(dec, tc.manifest)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// everyOption turns on every optional object and changes the defaults the
// templates branch on.
const everyOption = `
distributor:
  autoscaling: {enabled: false}
  replicas: 4
  preStopSleepSeconds: 0
  ingress:
    enabled: true
    hosts: [{host: rw.example.com, paths: [{path: /api/v1/write, pathType: Exact}, {path: /api/v1, pathType: Prefix}]}]
ingester:
  antiAffinity: hard
  terminationGracePeriodSeconds: 300
reload: {enabled: false}
secrets:
  create: {token: s3cret}
  existing: [grafana-token]
plugins: {configMap: promgov-plugins}
serviceMonitor: {enabled: true}
podMonitor: {enabled: true}
dashboards: {enabled: true}
prometheusRule:
  enabled: true
  groups:
    - name: promgov
      rules:
        - alert: PromgovIngesterDown
          expr: up{job=~".*promgov.*"} == 0
          for: 5m
`

func TestChartRender(t *testing.T) {
	requireHelm(t)
	optionsFile := filepath.Join(t.TempDir(), "every-option.yaml")
	require.NoError(t, os.WriteFile(optionsFile, []byte(everyOption), 0o644))
	base := []string{
		"ConfigMap/" + configMapName, "Deployment/" + distName, "PodDisruptionBudget/" + distName,
		"PodDisruptionBudget/" + ingesterName, "Service/" + distName, "Service/" + gossipSvc, "Service/" + ingesterName,
		"ServiceAccount/" + fullname, "StatefulSet/" + ingesterName,
	}
	tests := map[string]struct {
		files []string
		want  []string // besides base
	}{
		"default values":     {want: []string{"HorizontalPodAutoscaler/" + distName}},
		"production example": {files: []string{productionEx}, want: []string{"HorizontalPodAutoscaler/" + distName, "Ingress/" + distName, "ServiceMonitor/" + fullname}},
		"every option": {files: []string{optionsFile}, want: append([]string{
			"Ingress/" + distName, "PodMonitor/" + fullname, "PrometheusRule/" + fullname, "Secret/" + fullname, "ServiceMonitor/" + fullname,
		}, mixinDashboardNames(t)...)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs := render(t, tc.files)
			got := objectList(objs)
			want := append(append([]string{}, base...), tc.want...)
			require.ElementsMatch(t, want, got)
			t.Logf("%d objects, every one decoded strictly: %s", len(got), strings.Join(got, ", "))
			checkChart(t, objs)
		})
	}
}

// checkChart asserts what a working cluster depends on.
func checkChart(t *testing.T, objs []object) {
	templates := podTemplates(objs)
	sts := one[*appsv1.StatefulSet](t, objs, ingesterName)
	dep := one[*appsv1.Deployment](t, objs, distName)
	ing := container(t, &sts.Spec.Template, "ingester")
	dist := container(t, &dep.Spec.Template, "distributor")

	t.Run("every promgov container", func(t *testing.T) {
		for _, c := range []struct {
			tpl *corev1.PodTemplateSpec
			c   *corev1.Container
		}{{&sts.Spec.Template, ing}, {&dep.Spec.Template, dist}} {
			checkContainer(t, c.tpl, c.c)
		}
	})

	t.Run("services select pods that have their ports", func(t *testing.T) {
		for _, svc := range all[*corev1.Service](objs) {
			selected := 0
			for _, tpl := range templates {
				if !matches(svc.Spec.Selector, tpl.Labels) {
					continue
				}
				selected++
				for _, p := range svc.Spec.Ports {
					found := false
					for i := range tpl.Spec.Containers {
						_, ok := containerPort(&tpl.Spec.Containers[i], p.TargetPort.String(), p.Protocol)
						found = found || ok
					}
					require.True(t, found, "Service %s port %s: no container port %s/%s", svc.Name, p.Name, p.TargetPort.String(), p.Protocol)
				}
			}
			require.Positive(t, selected, "Service %s selects no pod", svc.Name)
		}
	})

	t.Run("gossip service: headless, every member, the memberlist port", func(t *testing.T) {
		svc := one[*corev1.Service](t, objs, gossipSvc)
		require.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
		require.True(t, svc.Spec.PublishNotReadyAddresses, "joining ingesters are not ready yet and must be found")
		require.True(t, matches(svc.Spec.Selector, sts.Spec.Template.Labels), "selects the ingesters")
		require.True(t, matches(svc.Spec.Selector, dep.Spec.Template.Labels), "selects the distributors")
		protocols := map[corev1.Protocol]bool{}
		for _, p := range svc.Spec.Ports {
			protocols[p.Protocol] = true
			require.Equal(t, port(t, flagValue(ing.Args, "memberlist.bind-address")), p.Port, "service port = memberlist port")
		}
		require.Equal(t, map[corev1.Protocol]bool{corev1.ProtocolTCP: true, corev1.ProtocolUDP: true}, protocols)
		for _, c := range []*corev1.Container{ing, dist} {
			require.Equal(t, gossipSvc+"."+namespace+".svc.cluster.local:"+strconv.Itoa(int(svc.Spec.Ports[0].Port)),
				flagValue(c.Args, "memberlist.join"), "%s joins through the gossip service", c.Name)
		}
	})

	t.Run("ingesters: StatefulSet, WAL volume, grace period", func(t *testing.T) {
		require.Equal(t, appsv1.ParallelPodManagement, sts.Spec.PodManagementPolicy)
		require.Equal(t, appsv1.RollingUpdateStatefulSetStrategyType, sts.Spec.UpdateStrategy.Type)
		gov := one[*corev1.Service](t, objs, sts.Spec.ServiceName)
		require.Equal(t, corev1.ClusterIPNone, gov.Spec.ClusterIP, "the governing service is headless")
		require.True(t, matches(gov.Spec.Selector, sts.Spec.Template.Labels))

		require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
		pvc := sts.Spec.VolumeClaimTemplates[0]
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		require.Positive(t, size.Value())
		walDir := flagValue(ing.Args, "wal.dir")
		mounted := false
		for _, m := range ing.VolumeMounts {
			if m.Name == pvc.Name {
				require.True(t, strings.HasPrefix(walDir, strings.TrimSuffix(m.MountPath, "/")+"/"), "--wal.dir %s is on the volume mounted at %s", walDir, m.MountPath)
				mounted = true
			}
		}
		require.True(t, mounted, "the ingester does not mount the PVC %s", pvc.Name)
		cfg := renderedIngesterConfig(t, objs, ing.Args)
		require.Positive(t, cfg.WAL.MaxSizeBytes, "an unbounded WAL fills its volume")
		require.Less(t, cfg.WAL.MaxSizeBytes, size.Value(), "wal.max_size_bytes must leave room on the %s volume for the snapshots", size.String())

		drain, err := time.ParseDuration(flagValue(ing.Args, "ingester.leave-drain-period"))
		require.NoError(t, err)
		flush, err := time.ParseDuration(flagValue(ing.Args, "forward.flush-deadline"))
		require.NoError(t, err)
		grace := time.Duration(*sts.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		require.GreaterOrEqual(t, grace, drain+flush+webShutdownMax*time.Second,
			"terminationGracePeriodSeconds must cover the drain (%s), the flush (%s) and the HTTP shutdown", drain, flush)
		require.NotNil(t, sts.Spec.Template.Spec.Affinity.PodAntiAffinity, "ingesters spread over nodes")

		pdb := one[*policyv1.PodDisruptionBudget](t, objs, ingesterName)
		require.True(t, matches(pdb.Spec.Selector.MatchLabels, sts.Spec.Template.Labels))
		require.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	})

	t.Run("distributors: Deployment, autoscaler, disruption budget", func(t *testing.T) {
		require.Zero(t, dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue(), "a rolling update never lowers capacity")
		hpas := all[*autoscalingv2.HorizontalPodAutoscaler](objs)
		if len(hpas) > 0 {
			require.Nil(t, dep.Spec.Replicas, "with an autoscaler the Deployment must not set replicas")
			require.Equal(t, "Deployment", hpas[0].Spec.ScaleTargetRef.Kind)
			require.Equal(t, dep.Name, hpas[0].Spec.ScaleTargetRef.Name)
			require.Equal(t, corev1.ResourceCPU, hpas[0].Spec.Metrics[0].Resource.Name)
			require.False(t, dist.Resources.Requests.Cpu().IsZero(), "CPU utilisation needs a CPU request")
		} else {
			require.NotNil(t, dep.Spec.Replicas)
		}
		pdb := one[*policyv1.PodDisruptionBudget](t, objs, distName)
		require.True(t, matches(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels))
		grace := *dep.Spec.Template.Spec.TerminationGracePeriodSeconds
		var sleep int64
		if dist.Lifecycle != nil && dist.Lifecycle.PreStop != nil {
			require.NotNil(t, dist.Lifecycle.PreStop.Sleep)
			sleep = dist.Lifecycle.PreStop.Sleep.Seconds
		}
		require.GreaterOrEqual(t, grace, sleep+webShutdownMax, "grace period covers the preStop sleep and in-flight requests")
		renderedConfig(t, objs, config.RoleDistributor, dist.Args)
	})

	t.Run("the shared configuration passes distributor check-config", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "promgov.yml")
		require.NoError(t, os.WriteFile(file, []byte(one[*corev1.ConfigMap](t, objs, configMapName).Data["promgov.yml"]), 0o644))
		var out bytes.Buffer
		cmd := exec.Command(filepath.Join(binDir, "distributor"), "check-config", file)
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Run(), "distributor check-config: %s", out.String())
		require.Contains(t, out.String(), "SUCCESS")
	})

	t.Run("monitoring objects point at real ports", func(t *testing.T) {
		for _, sm := range all[*monitoringv1.ServiceMonitor](objs) {
			n := 0
			for _, svc := range all[*corev1.Service](objs) {
				if !matches(sm.Spec.Selector.MatchLabels, svc.Labels) {
					continue
				}
				n++
				for _, ep := range sm.Spec.Endpoints {
					require.True(t, hasServicePort(svc, ep.Port), "ServiceMonitor port %s not on Service %s", ep.Port, svc.Name)
				}
			}
			require.Equal(t, 2, n, "the ServiceMonitor scrapes the distributor and ingester Services")
		}
		for _, pm := range all[*monitoringv1.PodMonitor](objs) {
			for _, tpl := range templates {
				require.True(t, matches(pm.Spec.Selector.MatchLabels, tpl.Labels))
				for _, ep := range pm.Spec.PodMetricsEndpoints {
					_, ok := containerPort(&tpl.Spec.Containers[0], *ep.Port, corev1.ProtocolTCP)
					require.True(t, ok, "PodMonitor port %s", *ep.Port)
				}
			}
		}
		for _, in := range all[*networkingv1.Ingress](objs) {
			for _, r := range in.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					svc := one[*corev1.Service](t, objs, p.Backend.Service.Name)
					require.Equal(t, svc.Spec.Ports[0].Port, p.Backend.Service.Port.Number)
				}
			}
		}
	})
}

// checkContainer checks one promgov container (distributor or ingester):
// probes on the port it serves HTTP on, the memberlist ports, the mounted
// configuration, the reloader sidecar and the non-root user.
func checkContainer(t *testing.T, tpl *corev1.PodTemplateSpec, c *corev1.Container) {
	web := port(t, flagValue(c.Args, "web.listen-address"))
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		require.NotNil(t, p, "%s: %s probe", c.Name, name)
		wantPath := map[string]string{"readiness": "/-/ready", "liveness": "/-/healthy", "startup": "/-/healthy"}[name]
		require.Equal(t, wantPath, p.HTTPGet.Path, "%s %s probe", c.Name, name)
		cp, ok := containerPort(c, p.HTTPGet.Port.String(), corev1.ProtocolTCP)
		require.True(t, ok, "%s %s probe port %s is no container port", c.Name, name, p.HTTPGet.Port.String())
		require.Equal(t, web, cp.ContainerPort, "%s %s probe: the port --web.listen-address serves", c.Name, name)
	}
	gossip := port(t, flagValue(c.Args, "memberlist.bind-address"))
	require.Equal(t, gossip, port(t, flagValue(c.Args, "memberlist.advertise-address")))
	require.Equal(t, "$(POD_IP)", host(t, flagValue(c.Args, "memberlist.advertise-address")), "advertise the pod IP")
	require.Equal(t, "$(POD_NAME)", flagValue(c.Args, "memberlist.node-name"), "unique, stable member names")
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		cp, ok := containerPort(c, "gossip-"+strings.ToLower(string(proto)), proto)
		require.True(t, ok, "%s: gossip %s port", c.Name, proto)
		require.Equal(t, gossip, cp.ContainerPort)
	}
	if g := flagValue(c.Args, "grpc.listen-address"); g != "" {
		cp, ok := containerPort(c, "grpc", corev1.ProtocolTCP)
		require.True(t, ok)
		require.Equal(t, port(t, g), cp.ContainerPort)
		require.Equal(t, "$(POD_IP):"+strconv.Itoa(int(cp.ContainerPort)), flagValue(c.Args, "grpc.advertise-address"))
	}
	configFile := flagValue(c.Args, "config.file")
	requireConfigMount(t, tpl, c, configFile)

	for i := range tpl.Spec.Containers {
		r := &tpl.Spec.Containers[i]
		if r.Name != "reloader" {
			continue
		}
		require.Equal(t, configFile, flagValue(r.Args, "file"), "the reloader watches the file the process reads")
		require.Equal(t, "http://127.0.0.1:"+strconv.Itoa(int(web))+"/-/reload", flagValue(r.Args, "url"))
		requireConfigMount(t, tpl, r, configFile)
	}
	sc := tpl.Spec.SecurityContext
	require.True(t, *sc.RunAsNonRoot)
	require.Equal(t, int64(imageUser), *sc.RunAsUser)
	require.Equal(t, int64(imageUser), *sc.FSGroup, "the WAL volume must be writable by the image's user")
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
}

// requireConfigMount asserts file is on the ConfigMap volume mounted as a
// directory (a subPath mount never sees ConfigMap updates).
func requireConfigMount(t *testing.T, tpl *corev1.PodTemplateSpec, c *corev1.Container, file string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		require.Empty(t, m.SubPath, "%s: a subPath mount of the configuration is never updated", c.Name)
		for _, v := range tpl.Spec.Volumes {
			if v.Name == m.Name {
				require.NotNil(t, v.ConfigMap, "%s: %s is not a ConfigMap volume", c.Name, m.MountPath)
				require.Equal(t, configMapName, v.ConfigMap.Name)
				return
			}
		}
	}
	t.Fatalf("%s: --config.file %s is on no mounted volume", c.Name, file)
}

// renderedConfig parses the rendered ConfigMap with the container's flags
// as the binary would (a missing or invalid setting fails), with the pod's
// environment and the file's path replaced.
func renderedConfig(t *testing.T, objs []object, role config.Role, args []string) config.Binary {
	t.Helper()
	file := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(file, []byte(one[*corev1.ConfigMap](t, objs, configMapName).Data["promgov.yml"]), 0o644))
	var local []string
	for _, a := range args {
		a = strings.NewReplacer("$(POD_IP)", "10.1.2.3", "$(POD_NAME)", "pod-0").Replace(a)
		if strings.HasPrefix(a, "--config.file=") {
			a = "--config.file=" + file
		}
		local = append(local, a)
	}
	var stderr bytes.Buffer
	var cfg config.Binary
	var err error
	if role == config.RoleIngester {
		cfg, err = config.ParseIngester(local, &stderr)
	} else {
		cfg, err = distributorconfig.Parse(local, &stderr)
	}
	require.NoError(t, err, "%s flags %v: %s", role, local, stderr.String())
	return cfg
}

// renderedIngesterConfig is renderedConfig of an ingester.
func renderedIngesterConfig(t *testing.T, objs []object, args []string) *config.IngesterConfig {
	t.Helper()
	return renderedConfig(t, objs, config.RoleIngester, args).(*config.IngesterConfig)
}

func hasServicePort(svc *corev1.Service, name string) bool {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// port returns the port of a host:port as the API types hold it.
func port(t *testing.T, hostPort string) int32 {
	t.Helper()
	i := strings.LastIndexByte(hostPort, ':')
	require.Positive(t, i+1, "%q has no port", hostPort)
	p, err := strconv.Atoi(hostPort[i+1:])
	require.NoError(t, err, "%q", hostPort)
	return int32(p)
}

func host(t *testing.T, hostPort string) string {
	t.Helper()
	i := strings.LastIndexByte(hostPort, ':')
	require.Positive(t, i+1, "%q has no port", hostPort)
	return hostPort[:i]
}
