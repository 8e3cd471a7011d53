package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/stretchr/testify/require"
	ctyyaml "github.com/zclconf/go-cty-yaml"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// No Terraform provider can be downloaded here, so `terraform validate`
// cannot run. These tests check what runs offline: HCL syntax and the
// formatting `terraform fmt` enforces (hclwrite), the module's structure,
// and the module evaluated as Terraform would for each example (variables
// typed and defaulted, validations, locals, the helm_release values), with
// the values rendered by helm template and checked like the chart's own.

const moduleDir = "terraform/promgov"

func TestTerraformFormatted(t *testing.T) {
	files, err := filepath.Glob("terraform/promgov/*.tf")
	require.NoError(t, err)
	examples, err := filepath.Glob("terraform/promgov/examples/*/*.tf")
	require.NoError(t, err)
	files = append(files, examples...)
	require.GreaterOrEqual(t, len(files), 6)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		_, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		require.False(t, diags.HasErrors(), "%s: %s", f, diags.Error())
		require.Equal(t, string(hclwrite.Format(src)), string(src), "%s is not formatted (terraform fmt)", f)
	}
}

// tfModule is a parsed Terraform module: its blocks by kind.
type tfModule struct {
	dir       string
	terraform []*hclsyntax.Block
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	outputs   map[string]*hclsyntax.Block
	modules   map[string]*hclsyntax.Block
	providers []*hclsyntax.Block
	varRefs   map[string]bool // every var.X read
}

func parseModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	m := &tfModule{dir: dir, variables: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{}, modules: map[string]*hclsyntax.Block{},
		varRefs: map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		require.False(t, diags.HasErrors(), diags.Error())
		body := file.Body.(*hclsyntax.Body)
		require.Empty(t, body.Attributes, "%s: top-level attributes", f)
		for _, b := range body.Blocks {
			switch b.Type {
			case "terraform":
				m.terraform = append(m.terraform, b)
			case "variable":
				m.variables[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					m.locals[name] = a
				}
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "output":
				m.outputs[b.Labels[0]] = b
			case "module":
				m.modules[b.Labels[0]] = b
			case "provider":
				m.providers = append(m.providers, b)
			default:
				t.Fatalf("%s: unexpected block %s", f, b.Type)
			}
		}
		_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(*hclsyntax.ScopeTraversalExpr); ok && e.Traversal.RootName() == "var" && len(e.Traversal) > 1 {
				m.varRefs[e.Traversal[1].(hcl.TraverseAttr).Name] = true
			}
			return nil
		})
	}
	return m
}

// tfVariable is a declared variable's type and default.
type tfVariable struct {
	typ      cty.Type
	defaults *typeexpr.Defaults
	def      cty.Value // cty.NilVal: required
}

func (m *tfModule) variable(t *testing.T, name string) tfVariable {
	t.Helper()
	b := m.variables[name]
	typeAttr, ok := b.Body.Attributes["type"]
	require.True(t, ok, "variable %s has no type", name)
	typ, defaults, diags := typeexpr.TypeConstraintWithDefaults(typeAttr.Expr)
	require.False(t, diags.HasErrors(), "variable %s type: %s", name, diags.Error())
	v := tfVariable{typ: typ, defaults: defaults, def: cty.NilVal}
	if a, ok := b.Body.Attributes["default"]; ok {
		def, diags := a.Expr.Value(nil)
		require.False(t, diags.HasErrors(), "variable %s default: %s", name, diags.Error())
		v.def = v.convert(t, name, def)
	}
	return v
}

// convert applies the type's defaults and converts, as Terraform does with
// a variable's value.
func (v tfVariable) convert(t *testing.T, name string, val cty.Value) cty.Value {
	t.Helper()
	if val.IsNull() {
		return cty.NullVal(v.typ)
	}
	if v.defaults != nil {
		val = v.defaults.Apply(val)
	}
	out, err := convert.Convert(val, v.typ)
	require.NoError(t, err, "variable %s", name)
	return out
}

func TestTerraformModule(t *testing.T) {
	m := parseModule(t, moduleDir)

	require.Len(t, m.terraform, 1)
	tf := m.terraform[0].Body
	require.Contains(t, tf.Attributes, "required_version")
	var providers *hclsyntax.Block
	for _, b := range tf.Blocks {
		if b.Type == "required_providers" {
			providers = b
		}
	}
	require.NotNil(t, providers, "required_providers")
	helmReq, diags := providers.Body.Attributes["helm"].Expr.Value(nil)
	require.False(t, diags.HasErrors())
	require.Equal(t, "hashicorp/helm", helmReq.GetAttr("source").AsString())
	require.Empty(t, m.providers, "a reusable module leaves provider configuration to its caller")

	for name, b := range m.variables {
		desc, ok := b.Body.Attributes["description"]
		require.True(t, ok, "variable %s has no description", name)
		v, _ := desc.Expr.Value(nil)
		require.NotEmpty(t, v.AsString(), "variable %s", name)
		m.variable(t, name) // type parses, default converts
		require.True(t, m.varRefs[name], "variable %s is never used", name)
	}
	for name := range m.varRefs {
		require.Contains(t, m.variables, name, "var.%s is not declared", name)
	}
	for name, b := range m.outputs {
		require.Contains(t, b.Body.Attributes, "description", "output %s", name)
	}
	rel, ok := m.resources["helm_release.promgov"]
	require.True(t, ok, "helm_release.promgov")
	for _, a := range []string{"name", "namespace", "chart", "values"} {
		require.Contains(t, rel.Body.Attributes, a, "helm_release.promgov.%s", a)
	}
}

// TestTerraformExamples evaluates the module with each example's arguments
// and renders the chart with the values the module would give helm.
func TestTerraformExamples(t *testing.T) {
	m := parseModule(t, moduleDir)
	examples, err := filepath.Glob("terraform/promgov/examples/*")
	require.NoError(t, err)
	require.Len(t, examples, 2)
	for _, dir := range examples {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ex := parseModule(t, dir)
			call, ok := ex.modules["promgov"]
			require.True(t, ok, "module \"promgov\"")
			src, diags := call.Body.Attributes["source"].Expr.Value(nil)
			require.False(t, diags.HasErrors())
			abs := func(p string) string { a, err := filepath.Abs(p); require.NoError(t, err); return a }
			require.Equal(t, abs(moduleDir), abs(filepath.Join(dir, src.AsString())), "the example's source is the module")

			inputs := map[string]cty.Value{}
			for name, a := range call.Body.Attributes {
				if name == "source" {
					continue
				}
				require.Contains(t, m.variables, name, "argument %s is no variable of the module", name)
				val, diags := a.Expr.Value(evalContext(dir, nil))
				require.False(t, diags.HasErrors(), "%s: %s", name, diags.Error())
				inputs[name] = val
			}
			values := evaluateModule(t, m, inputs)
			if skipReason != "" {
				t.Skip("the module evaluates; rendering its values needs helm: " + skipReason)
			}
			var files []string
			for i, v := range values {
				f := filepath.Join(t.TempDir(), fmt.Sprintf("values-%d.yaml", i))
				require.NoError(t, os.WriteFile(f, []byte(v), 0o644))
				files = append(files, f)
			}
			objs := render(t, files)
			t.Logf("%d objects: %s", len(objs), strings.Join(objectList(objs), ", "))
			checkChart(t, objs)

			// The module's inputs reached the chart.
			sts := one[*appsv1.StatefulSet](t, objs, ingesterName)
			want := func(name string, def int64) int64 {
				if v, ok := inputs[name]; ok {
					i, _ := v.AsBigFloat().Int64()
					return i
				}
				return def
			}
			require.Equal(t, int32(want("ingester_replicas", 3)), *sts.Spec.Replicas)
			hpa := one[*autoscalingv2.HorizontalPodAutoscaler](t, objs, distName)
			require.Equal(t, int32(want("distributor_min_replicas", 2)), *hpa.Spec.MinReplicas)
			require.Equal(t, int32(want("distributor_max_replicas", 10)), hpa.Spec.MaxReplicas)
			if sc, ok := inputs["storage_class"]; ok {
				require.Equal(t, sc.AsString(), *sts.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
			}
			ing := container(t, &sts.Spec.Template, "ingester")
			cfg := renderedIngesterConfig(t, objs, ing.Args)
			require.Equal(t, inputs["backend_url"].AsString(), cfg.Backend.URL)
			if tl, ok := inputs["tenant_limits"]; ok {
				for tenant := range tl.AsValueMap() {
					require.Contains(t, cfg.Cardinality.Limits.Tenants, tenant)
				}
			}
		})
	}
}

// evaluateModule computes the helm_release's values as Terraform would:
// variables from inputs or defaults, validations, locals, then the
// resource's values and precondition.
func evaluateModule(t *testing.T, m *tfModule, inputs map[string]cty.Value) []string {
	t.Helper()
	vars := map[string]cty.Value{}
	for name := range m.variables {
		v := m.variable(t, name)
		if in, ok := inputs[name]; ok {
			vars[name] = v.convert(t, name, in)
			continue
		}
		require.NotEqual(t, cty.NilVal, v.def, "required variable %s is not given", name)
		vars[name] = v.def
	}
	for name, b := range m.variables {
		for _, vb := range b.Body.Blocks {
			if vb.Type != "validation" {
				continue
			}
			ok, diags := vb.Body.Attributes["condition"].Expr.Value(evalContext(m.dir, map[string]cty.Value{"var": cty.ObjectVal(vars)}))
			require.False(t, diags.HasErrors(), "variable %s validation: %s", name, diags.Error())
			require.True(t, ok.True(), "variable %s fails its validation", name)
		}
	}
	// Locals in dependency order: evaluate what can be until nothing is left.
	locals := map[string]cty.Value{}
	for len(locals) < len(m.locals) {
		progress := false
		for name, a := range m.locals {
			if _, done := locals[name]; done || !ready(a.Expr, locals) {
				continue
			}
			val, diags := a.Expr.Value(evalContext(m.dir, map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)}))
			require.False(t, diags.HasErrors(), "local.%s: %s", name, diags.Error())
			locals[name] = val
			progress = true
		}
		require.True(t, progress, "locals depend on each other in a cycle")
	}
	ctx := evalContext(m.dir, map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)})
	rel := m.resources["helm_release.promgov"].Body
	for _, b := range rel.Blocks {
		for _, pre := range b.Body.Blocks {
			if pre.Type == "precondition" {
				ok, diags := pre.Body.Attributes["condition"].Expr.Value(ctx)
				require.False(t, diags.HasErrors(), diags.Error())
				require.True(t, ok.True(), "helm_release precondition fails")
			}
		}
	}
	chart, diags := rel.Attributes["chart"].Expr.Value(ctx)
	require.False(t, diags.HasErrors(), diags.Error())
	require.FileExists(t, filepath.Join(chart.AsString(), "Chart.yaml"), "the module installs the chart of this repository")
	values, diags := rel.Attributes["values"].Expr.Value(ctx)
	require.False(t, diags.HasErrors(), diags.Error())
	var out []string
	for _, v := range values.AsValueSlice() {
		out = append(out, v.AsString())
	}
	return out
}

// ready reports whether every local.X that expr reads is evaluated.
func ready(expr hcl.Expression, locals map[string]cty.Value) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() == "local" {
			if _, ok := locals[tr[1].(hcl.TraverseAttr).Name]; !ok {
				return false
			}
		}
	}
	return true
}

// evalContext has the Terraform functions the module and examples call.
func evalContext(dir string, vars map[string]cty.Value) *hcl.EvalContext {
	if vars == nil {
		vars = map[string]cty.Value{}
	}
	vars["path"] = cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(dir)})
	return &hcl.EvalContext{
		Variables: vars,
		Functions: map[string]function.Function{
			"can": tryfunc.CanFunc, "coalesce": stdlib.CoalesceFunc, "concat": stdlib.ConcatFunc,
			"contains": stdlib.ContainsFunc, "merge": stdlib.MergeFunc, "regex": stdlib.RegexFunc,
			"strcontains": strContainsFunc, "yamlencode": ctyyaml.YAMLEncodeFunc,
		},
	}
}

// strContainsFunc is Terraform's strcontains.
var strContainsFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.Contains(args[0].AsString(), args[1].AsString())), nil
	},
})
