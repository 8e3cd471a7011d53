package deploy

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// TestChartPlugins: with a plugins volume source set, every pod (the
// distributors run the rules, the ingesters compile them for the impact
// preview) mounts it read-only at plugins.mountPath in its promgov
// container, and nowhere else; with none set, nothing is mounted.
func TestChartPlugins(t *testing.T) {
	requireHelm(t)
	tests := map[string]struct {
		sets      []string
		mountPath string
		check     func(t *testing.T, v *corev1.Volume)
	}{
		"configMap": {
			sets:      []string{"plugins.configMap=promgov-plugins"},
			mountPath: "/etc/promgov/plugins",
			check: func(t *testing.T, v *corev1.Volume) {
				require.NotNil(t, v.ConfigMap, "not a ConfigMap volume")
				require.Equal(t, "promgov-plugins", v.ConfigMap.Name)
			},
		},
		"existingClaim": {
			sets:      []string{"plugins.existingClaim=promgov-plugins", "plugins.mountPath=/plugins"},
			mountPath: "/plugins",
			check: func(t *testing.T, v *corev1.Volume) {
				require.NotNil(t, v.PersistentVolumeClaim, "not a PersistentVolumeClaim volume")
				require.Equal(t, "promgov-plugins", v.PersistentVolumeClaim.ClaimName)
				require.True(t, v.PersistentVolumeClaim.ReadOnly)
			},
		},
		"any volume source (an image volume)": {
			sets:      []string{"plugins.volume.image.reference=registry.example.com/promgov-plugins:v1", "plugins.volume.image.pullPolicy=IfNotPresent"},
			mountPath: "/etc/promgov/plugins",
			check: func(t *testing.T, v *corev1.Volume) {
				require.NotNil(t, v.Image, "not an image volume")
				require.Equal(t, "registry.example.com/promgov-plugins:v1", v.Image.Reference)
				require.Equal(t, corev1.PullIfNotPresent, v.Image.PullPolicy)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			templates := podTemplates(render(t, nil, tc.sets...))
			require.Len(t, templates, 2)
			for workload, tpl := range templates {
				v := volume(t, tpl, "plugins")
				tc.check(t, v)
				for _, c := range tpl.Spec.Containers {
					m, ok := mount(c, "plugins")
					if c.Name == "reloader" {
						require.False(t, ok, "%s: the reloader mounts the plugins", workload)
						continue
					}
					require.True(t, ok, "%s: container %s does not mount the plugins", workload, c.Name)
					require.Equal(t, tc.mountPath, m.MountPath, workload)
					require.True(t, m.ReadOnly, "%s: the plugins are mounted writable", workload)
				}
			}
		})
	}

	t.Run("none by default", func(t *testing.T) {
		for workload, tpl := range podTemplates(render(t, nil)) {
			for _, v := range tpl.Spec.Volumes {
				require.NotEqual(t, "plugins", v.Name, "%s has a plugins volume without plugins values", workload)
			}
		}
	})
}

// TestChartRefusesBadPluginValues: two volume sources, or a relative mount
// path, fail the render with a message naming the values and the fix.
func TestChartRefusesBadPluginValues(t *testing.T) {
	requireHelm(t)
	tests := map[string]struct {
		sets []string
		want string
	}{
		"two sources": {
			sets: []string{"plugins.configMap=a", "plugins.existingClaim=b"},
			want: "plugins: configMap, existingClaim are set; set only one of plugins.configMap, plugins.existingClaim or plugins.volume",
		},
		"relative mount path": {
			sets: []string{"plugins.configMap=a", "plugins.mountPath=plugins"},
			want: `plugins.mountPath: "plugins" is not an absolute path; use e.g. /etc/promgov/plugins`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helmBin, args...).CombinedOutput()
			require.Error(t, err, "rendered:\n%s", out)
			require.Contains(t, string(out), tc.want)
		})
	}
}

// volume returns the named volume of a pod template.
func volume(t *testing.T, tpl *corev1.PodTemplateSpec, name string) *corev1.Volume {
	t.Helper()
	for i := range tpl.Spec.Volumes {
		if tpl.Spec.Volumes[i].Name == name {
			return &tpl.Spec.Volumes[i]
		}
	}
	t.Fatalf("no volume %s", name)
	return nil
}

// mount returns c's mount of the named volume.
func mount(c corev1.Container, name string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}
