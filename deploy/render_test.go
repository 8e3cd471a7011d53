package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	chartDir     = "helm/promgov"
	release      = "pg"
	namespace    = "observability"
	kubeVersion  = "1.33.0"
	productionEx = "helm/promgov/ci/production-values.yaml"
)

// object is one decoded manifest.
type object interface {
	runtime.Object
	metav1.Object
}

// newStrictDecoder decodes YAML manifests into the Kubernetes API types
// (and prometheus-operator's), refusing unknown and duplicate fields and
// kinds it does not know.
func newStrictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	sch := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
		networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		require.NoError(t, add(sch))
	}
	return serializer.NewCodecFactory(sch, serializer.EnableStrict).UniversalDeserializer()
}

// helm runs the helm binary and returns its standard output.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "helm %s:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

// render runs helm template with the value files and --set flags given and
// decodes every manifest strictly.
func render(t *testing.T, valueFiles []string, sets ...string) []object {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, f := range valueFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	objs, err := decodeAll(newStrictDecoder(t), helm(t, args...))
	require.NoError(t, err)
	return objs
}

// decodeAll decodes every YAML document of a multi-document stream.
func decodeAll(dec runtime.Decoder, stream string) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if isEmptyDoc(doc) {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil { // strict errors come with a decoded object: still errors
			return nil, fmt.Errorf("decode manifest:\n%s\n: %w", firstLines(doc, 6), err)
		}
		o, ok := obj.(object)
		if !ok {
			return nil, fmt.Errorf("%s has no metadata", gvk)
		}
		out = append(out, o)
	}
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// kindName is an object's "Kind/name".
func kindName(o object) string {
	return fmt.Sprintf("%s/%s", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
}

// objectList is the sorted "Kind/name" of every object.
func objectList(objs []object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = kindName(o)
	}
	sort.Strings(out)
	return out
}

// all returns the objects of type T.
func all[T object](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the object of type T named name.
func one[T object](t *testing.T, objs []object, name string) T {
	t.Helper()
	for _, v := range all[T](objs) {
		if v.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s in %v", zero, name, objectList(objs))
	return zero
}

// podTemplates returns every workload's pod template by workload name.
func podTemplates(objs []object) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, s := range all[*appsv1.StatefulSet](objs) {
		out["StatefulSet/"+s.Name] = &s.Spec.Template
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		out["Deployment/"+d.Name] = &d.Spec.Template
	}
	return out
}

// matches reports whether selector selects labels.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// container returns the named container of a pod template.
func container(t *testing.T, tpl *corev1.PodTemplateSpec, name string) *corev1.Container {
	t.Helper()
	for i := range tpl.Spec.Containers {
		if tpl.Spec.Containers[i].Name == name {
			return &tpl.Spec.Containers[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// flagValue returns the value of --name=value in args ("" when absent).
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// containerPort resolves a named or numeric port of c.
// An empty protocol is TCP, as the API server defaults it.
func containerPort(c *corev1.Container, port string, proto corev1.Protocol) (corev1.ContainerPort, bool) {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, p := range c.Ports {
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if (p.Name == port || fmt.Sprint(p.ContainerPort) == port) && pp == proto {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}
