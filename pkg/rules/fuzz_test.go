package rules

import (
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
)

// FuzzLoadConfig: the loader never panics, and whatever it accepts compiles
// and can be applied.
func FuzzLoadConfig(f *testing.F) {
	for _, p := range []string{"testdata/realistic.yaml", "testdata/inline_test.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(httpTestRules))
	f.Add([]byte("rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [p], builtin: [uuid, ip], max_length: 20, overflow: hash}]}}"))
	f.Add([]byte("rules:\n- {name: a, scope: {tenants: [t], selector: '{a=~\"b.*\"}'}, action: tag, limits: {max_labels: 2}}"))
	f.Add([]byte("rules_name_validation_scheme: legacy\nrules:\n- {name: a, relabel_configs: [{action: labelmap, regex: 'x_(.*)', replacement: '$1'}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig(data)
		if err != nil {
			return
		}
		e, err := Compile(cfg, nil)
		if err != nil {
			t.Fatalf("LoadConfig accepted a config Compile rejects: %v", err)
		}
		s := &Series{Tenant: "t", Labels: labels.FromStrings("__name__", "HttpRequests", "a", "b", "p", "/u/1", "le", "1")}
		var tr Trace
		res := e.Apply(s, &tr)
		if res.Action == Changed && e.invalid(res.Labels) != "" {
			t.Fatalf("changed series is invalid: %s", res.Labels)
		}
		if _, err := configHash(cfg); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeTestRequest: the test API decoder never panics.
func FuzzDecodeTestRequest(f *testing.F) {
	f.Add([]byte(`{"tenant":"a","series":[{"series":"up{a=\"b\"}","type":"counter"}]}`), "application/json")
	f.Add([]byte("# TYPE a counter\na{b=\"c\"} 1\n"), "text/plain")
	f.Add([]byte("# TYPE a counter\na_total 1\n# EOF\n"), "application/openmetrics-text; version=1.0.0")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req, err := DecodeTestRequest(body, contentType, "t")
		if err != nil {
			return
		}
		if len(req.Series) == 0 || len(req.Series) > MaxTestSeries {
			t.Fatalf("decoder returned %d series", len(req.Series))
		}
	})
}

// FuzzUnitTestFile: the unit test file decoder never panics.
func FuzzUnitTestFile(f *testing.F) {
	for _, p := range []string{"testdata/realistic_test.yaml", "testdata/inline_test.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeUnitTestFile(data)
	})
}

// FuzzRelabelCompat: for random regexes and values, a relabel rule in the
// engine behaves exactly like relabel.ProcessBuilder (this guards the
// fast no-op pre-check).
func FuzzRelabelCompat(f *testing.F) {
	f.Add("debug_.*", "debug_x", "a", uint8(0))
	f.Add("a|b|c", "b", "a;b", uint8(1))
	f.Add("(?i)foo.*", "FOObar", "x", uint8(2))
	f.Add(".*_bucket;(0\\.1|1)", "x_bucket", "0.1", uint8(0))
	f.Add("pod_.*", "pod_uid", "v", uint8(3))
	f.Add("", "", "", uint8(4))
	f.Add("x", "up", "ABC", uint8(6))
	f.Add("x", "up", "abc", uint8(7))
	f.Add("x", "up", "p", uint8(8))
	f.Add("x", "up", "p", uint8(9))
	f.Add("(.*?)[0-9]+(.*)", "up", "h12:9", uint8(12)) // replace: a target template
	f.Add("u(p)", "up", "v", uint8(22))                // replace: deletes the target
	f.Add("(.*)", "up", "v", uint8(32))                // replace: no source, static value
	actions := []relabel.Action{relabel.Drop, relabel.Keep, relabel.Replace, relabel.LabelDrop, relabel.LabelKeep, relabel.LabelMap,
		relabel.Lowercase, relabel.Uppercase, relabel.KeepEqual, relabel.DropEqual}
	f.Fuzz(func(t *testing.T, re, name, value string, act uint8) {
		rx, err := relabel.NewRegexp(re)
		if err != nil {
			return
		}
		if _, err := labels.NewFastRegexMatcher(re); err != nil {
			return
		}
		cfg := relabel.DefaultRelabelConfig
		cfg.Regex = rx
		cfg.Action = actions[int(act)%len(actions)]
		switch cfg.Action {
		case relabel.Drop, relabel.Keep:
			cfg.SourceLabels = []modelLabelName{"__name__", "v"}
		case relabel.Replace:
			cfg.SourceLabels = []modelLabelName{"__name__", "v"}
			cfg.TargetLabel = "out"
			switch int(act) / len(actions) % 4 {
			case 1:
				cfg.TargetLabel, cfg.Replacement = "out_${1}", "x"
			case 2:
				cfg.Replacement = "" // deletes the target
			case 3:
				cfg.SourceLabels, cfg.Replacement = nil, "static"
			}
		case relabel.LabelMap:
			cfg.Replacement = "m_$1"
			cfg.Regex, _ = relabel.NewRegexp("(" + re + ")")
		case relabel.Lowercase, relabel.Uppercase:
			cfg.SourceLabels = []modelLabelName{"__name__", "v"}
			cfg.TargetLabel = "v"
		case relabel.KeepEqual, relabel.DropEqual:
			cfg.Regex = relabel.DefaultRelabelConfig.Regex
			cfg.SourceLabels = []modelLabelName{"v"}
			cfg.TargetLabel = "pod_uid"
		}
		if cfg.Validate(scheme()) != nil {
			return
		}
		if !labelsOK(name, value) {
			return
		}
		in := labels.FromStrings("__name__", name, "v", value, "pod_uid", "p")
		lb := labels.NewBuilder(in)
		keep := relabel.ProcessBuilder(lb, &cfg)
		want := lb.Labels()

		steps, err := compileRelabel([]*relabel.Config{&cfg}, scheme())
		if err != nil {
			t.Skip(err)
		}
		e, err := Compile(DefaultConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		e.rules = []*rule{{name: "r", kind: KindRelabel, mode: ModeEnforce, relabel: steps, stage: &relabelStage{steps: steps}}}
		// Twice: the second time finds the outcome the first remembered.
		for range 2 {
			checkRelabelCompat(t, e, in, want, keep)
		}
	})
}

// checkRelabelCompat holds the engine's result for in to relabel's (want,
// keep).
func checkRelabelCompat(t *testing.T, e *Engine, in, want labels.Labels, keep bool) {
	t.Helper()
	res := e.Apply(&Series{Labels: in}, nil)
	switch {
	case !keep:
		if res.Action != Dropped {
			t.Fatalf("relabel dropped %s, engine %v", in, res.Action)
		}
	case labels.Equal(want, in):
		if res.Action != Kept {
			t.Fatalf("relabel kept %s unchanged, engine %v %s", in, res.Action, res.Labels)
		}
	case e.invalid(want) != "":
		if res.Action != Dropped {
			t.Fatalf("relabel made invalid %s, engine %v", want, res.Action)
		}
	default:
		if res.Action != Changed || !labels.Equal(want, res.Labels) {
			t.Fatalf("relabel gave %s, engine %v %s", want, res.Action, res.Labels)
		}
	}
}
