package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"
)

// UnitTestFile is the format of a rule unit test file (see docs/rules.md).
// The rules come either from RuleFiles (promgov configuration files whose
// rules sections are concatenated in order; paths relative to the test
// file) or from the test file's own rules section.
type UnitTestFile struct {
	RuleFiles []string        `yaml:"rule_files,omitempty"`
	Tests     []UnitTestGroup `yaml:"tests"`

	// The rules section may be inlined; these fields only let the strict
	// decoder accept it (LoadConfig reads it).
	Rules                []yaml.Node `yaml:"rules,omitempty"`
	NameValidationScheme string      `yaml:"rules_name_validation_scheme,omitempty"`
	TagLabel             string      `yaml:"rules_tag_label,omitempty"`
	TypeCacheSize        int         `yaml:"rules_type_cache_size,omitempty"`
	TestMaxBodyBytes     int64       `yaml:"rules_test_max_body_bytes,omitempty"`
}

// UnitTestGroup is one named test: input series and their expected outcomes.
type UnitTestGroup struct {
	Name   string         `yaml:"name"`
	Tenant string         `yaml:"tenant,omitempty"`
	Series []UnitTestCase `yaml:"series"`
}

// UnitTestCase is one input series and what must happen to it.
type UnitTestCase struct {
	// Input in PromQL notation, e.g. `http_requests_total{job="api"}`.
	Input  string `yaml:"input"`
	Tenant string `yaml:"tenant,omitempty"`
	Type   string `yaml:"type,omitempty"`
	Unit   string `yaml:"unit,omitempty"`
	Expect Expect `yaml:"expect"`
}

// Expect is the expected result; at least Action or Output must be set.
type Expect struct {
	// Action is kept, changed or dropped.
	Action string `yaml:"action,omitempty"`
	// Output is the expected labels (PromQL notation) of a kept or changed
	// series.
	Output string `yaml:"output,omitempty"`
	// Rule is the expected deciding rule (Result.Rule).
	Rule string `yaml:"rule,omitempty"`
	// ReasonContains must be a substring of the reason.
	ReasonContains string `yaml:"reason_contains,omitempty"`
}

// Report is the outcome of RunTests.
type Report struct {
	File      string
	RuleFiles []string
	Rules     int
	Groups    []GroupReport
}

// GroupReport is the outcome of one test group.
type GroupReport struct {
	Name     string
	Series   int
	Failures []string
}

// OK reports whether every test passed.
func (r Report) OK() bool { return r.Failed() == 0 }

// Failed returns the number of failed groups.
func (r Report) Failed() int {
	n := 0
	for _, g := range r.Groups {
		if len(g.Failures) > 0 {
			n++
		}
	}
	return n
}

// String renders the report like promtool test rules.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Unit testing %s (%d rules)\n", r.File, r.Rules)
	for _, g := range r.Groups {
		if len(g.Failures) == 0 {
			fmt.Fprintf(&b, "  PASS %s (%d series)\n", g.Name, g.Series)
			continue
		}
		fmt.Fprintf(&b, "  FAIL %s\n", g.Name)
		for _, f := range g.Failures {
			for _, line := range strings.Split(strings.TrimRight(f, "\n"), "\n") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	if r.OK() {
		b.WriteString("SUCCESS\n")
	} else {
		fmt.Fprintf(&b, "FAILED: %d of %d tests\n", r.Failed(), len(r.Groups))
	}
	return b.String()
}

// ErrInvalidTestFile wraps problems of the test file itself (as opposed to
// failing tests, which are reported in the Report).
var ErrInvalidTestFile = errors.New("invalid rules test file")

// RunTests runs the rule unit tests in the file at path. The error is for
// files that cannot be read, parsed or compiled; test failures are in the
// Report (check Report.OK).
func RunTests(path string) (Report, error) {
	rep := Report{File: path}
	data, err := os.ReadFile(path)
	if err != nil {
		return rep, fmt.Errorf("read rules test file: %w", err)
	}
	tf, err := decodeUnitTestFile(data)
	if err != nil {
		return rep, fmt.Errorf("%w %s: %w", ErrInvalidTestFile, path, err)
	}
	cfg, err := unitTestConfig(path, data, tf)
	if err != nil {
		return rep, err
	}
	rep.RuleFiles = tf.RuleFiles
	eng, err := Compile(cfg, nil)
	if err != nil {
		return rep, fmt.Errorf("compile rules for %s: %w", path, err)
	}
	defer eng.Close(context.Background())
	rep.Rules = eng.Len()
	for gi, g := range tf.Tests {
		gr, err := runGroup(eng, g)
		if err != nil {
			return rep, fmt.Errorf("%w %s: tests[%d] (%q): %w", ErrInvalidTestFile, path, gi, g.Name, err)
		}
		rep.Groups = append(rep.Groups, gr)
	}
	return rep, nil
}

// decodeUnitTestFile parses a unit test file strictly.
func decodeUnitTestFile(data []byte) (UnitTestFile, error) {
	var tf UnitTestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return UnitTestFile{}, fmt.Errorf("parse yaml: %w", err)
	}
	if len(tf.Tests) == 0 {
		return UnitTestFile{}, errors.New("tests: no tests; add at least one")
	}
	if len(tf.RuleFiles) > 0 && len(tf.Rules) > 0 {
		return UnitTestFile{}, errors.New("set either rule_files or rules, not both")
	}
	for i, g := range tf.Tests {
		if g.Name == "" {
			return UnitTestFile{}, fmt.Errorf("tests[%d].name: required", i)
		}
		if len(g.Series) == 0 {
			return UnitTestFile{}, fmt.Errorf("tests[%d].series: no series; add at least one", i)
		}
		for j, c := range g.Series {
			if c.Expect.Action == "" && c.Expect.Output == "" {
				return UnitTestFile{}, fmt.Errorf("tests[%d].series[%d].expect: set action or output", i, j)
			}
			switch c.Expect.Action {
			case "", "kept", "changed", "dropped":
			default:
				return UnitTestFile{}, fmt.Errorf("tests[%d].series[%d].expect.action: %q; use kept, changed or dropped", i, j, c.Expect.Action)
			}
			if c.Expect.Action == "dropped" && c.Expect.Output != "" {
				return UnitTestFile{}, fmt.Errorf("tests[%d].series[%d].expect.output: a dropped series has no output; remove it", i, j)
			}
		}
	}
	return tf, nil
}

// unitTestConfig loads the rules a test file refers to.
func unitTestConfig(path string, data []byte, tf UnitTestFile) (Config, error) {
	if len(tf.RuleFiles) == 0 {
		cfg, err := LoadConfig(data)
		if err != nil {
			return Config{}, fmt.Errorf("inline rules of %s: %w", path, err)
		}
		return cfg, nil
	}
	var cfg Config
	for i, rf := range tf.RuleFiles {
		if !filepath.IsAbs(rf) {
			rf = filepath.Join(filepath.Dir(path), rf)
		}
		c, err := LoadConfigFile(rf)
		if err != nil {
			return Config{}, err
		}
		if i == 0 {
			cfg = c
			continue
		}
		cfg.Rules = append(cfg.Rules, c.Rules...)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: rule_files combined: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

func runGroup(eng *Engine, g UnitTestGroup) (GroupReport, error) {
	gr := GroupReport{Name: g.Name, Series: len(g.Series)}
	for i, c := range g.Series {
		ls, err := parseSeries(c.Input)
		if err != nil {
			return gr, fmt.Errorf("series[%d].input: %w", i, err)
		}
		var want labels.Labels
		if c.Expect.Output != "" {
			if want, err = parseSeries(c.Expect.Output); err != nil {
				return gr, fmt.Errorf("series[%d].expect.output: %w", i, err)
			}
		}
		if err := validType(model.MetricType(c.Type)); err != nil {
			return gr, fmt.Errorf("series[%d].type: %w", i, err)
		}
		s := Series{Tenant: c.Tenant, Labels: ls, Meta: Metadata{Type: model.MetricType(c.Type), Unit: c.Unit}}
		if s.Tenant == "" {
			s.Tenant = g.Tenant
		}
		var tr Trace
		res := eng.Apply(&s, &tr)
		var problems []string
		if c.Expect.Action != "" && res.Action.String() != c.Expect.Action {
			problems = append(problems, fmt.Sprintf("action: got %s, want %s", res.Action, c.Expect.Action))
		}
		if c.Expect.Output != "" {
			if res.Action == Dropped {
				problems = append(problems, fmt.Sprintf("output: series was dropped, want %s", want))
			} else if !labels.Equal(res.Labels, want) {
				problems = append(problems, fmt.Sprintf("output: got %s, want %s", res.Labels, want))
			}
		}
		if c.Expect.Rule != "" && res.Rule != c.Expect.Rule {
			problems = append(problems, fmt.Sprintf("rule: got %q, want %q", res.Rule, c.Expect.Rule))
		}
		if c.Expect.ReasonContains != "" && !strings.Contains(res.Reason, c.Expect.ReasonContains) {
			problems = append(problems, fmt.Sprintf("reason: got %q, want it to contain %q", res.Reason, c.Expect.ReasonContains))
		}
		if len(problems) > 0 {
			gr.Failures = append(gr.Failures, fmt.Sprintf("series[%d] %s:\n  %s\n  trace:\n%s", i, c.Input,
				strings.Join(problems, "\n  "), indent(tr.String(), "    ")))
		}
	}
	return gr, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// CheckConfigFile loads and compiles the rules section of the configuration
// file at path, as a CI check. It returns the number of rules.
func CheckConfigFile(path string) (int, error) {
	cfg, err := LoadConfigFile(path)
	if err != nil {
		return 0, err
	}
	eng, err := Compile(cfg, nil)
	if err != nil {
		return 0, fmt.Errorf("compile rules config %s: %w", path, err)
	}
	defer eng.Close(context.Background())
	return eng.Len(), nil
}
