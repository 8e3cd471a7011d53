// Package rules loads alerting and recording rules — Prometheus rule files,
// PrometheusRule objects (spec.groups), Grafana-managed alert provisioning
// files and the rules APIs of Prometheus, Mimir/Cortex and vmalert — and
// extracts the metrics their expressions read.
//
// Parsing functions are pure; a Client is safe for concurrent use.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// Kind is the kind of a rule.
type Kind string

// Rule kinds.
const (
	KindRecording    Kind = "recording_rule"
	KindAlert        Kind = "alert"
	KindGrafanaAlert Kind = "grafana_alert"
)

// Rule is one rule with what its expression reads.
type Rule struct {
	// Kind says whether it records, alerts, or is a Grafana-managed alert.
	Kind Kind
	// Group is the rule group name.
	Group string
	// Name is the recorded metric name (recording rules) or alert name.
	Name string
	// Expr is the PromQL expression.
	Expr string
	// Refs is what Expr reads; nil when Err is set.
	Refs *promqlx.Refs
	// Err is the parse error, if any.
	Err error
}

// ID identifies the rule for usage reports: "group/name".
func (r Rule) ID() string { return r.Group + "/" + r.Name }

func newRule(kind Kind, group, name, expr string, labelRefs []string) Rule {
	r := Rule{Kind: kind, Group: group, Name: name, Expr: expr}
	r.Refs, r.Err = promqlx.Extract(expr)
	if r.Refs != nil {
		r.Refs.AddLabels(labelRefs...)
	}
	return r
}

type ruleFile struct {
	Kind   string      `yaml:"kind"`
	Groups []ruleGroup `yaml:"groups"`
	Spec   struct {
		Groups []ruleGroup `yaml:"groups"`
	} `yaml:"spec"`
	Items []ruleFile `yaml:"items"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []struct {
		Record      string            `yaml:"record"`
		Alert       string            `yaml:"alert"`
		Expr        string            `yaml:"expr"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"rules"`
}

// ParseFile parses a Prometheus rule file or YAML holding PrometheusRule
// objects (multi-document and Lists supported). Expressions that fail to
// parse are returned with Err set; the returned error is for undecodable YAML.
func ParseFile(data []byte) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Rule
	for {
		var f ruleFile
		err := dec.Decode(&f)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("decode rule yaml: %w", err)
		}
		out = appendFile(out, f)
	}
}

func appendFile(out []Rule, f ruleFile) []Rule {
	groups := f.Groups
	if f.Kind == "PrometheusRule" || len(groups) == 0 {
		groups = append(groups, f.Spec.Groups...)
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out = append(out, newRule(KindRecording, g.Name, r.Record, r.Expr, nil))
				continue
			}
			var refs []string
			for _, a := range r.Annotations {
				refs = append(refs, templateLabels(a)...)
			}
			out = append(out, newRule(KindAlert, g.Name, r.Alert, r.Expr, refs))
		}
	}
	for _, it := range f.Items {
		out = appendFile(out, it)
	}
	return out
}

// templateLabels returns label names referenced as $labels.x / .Labels.x in
// alert annotation templates.
func templateLabels(s string) []string {
	var out []string
	for _, pfx := range []string{"$labels.", ".Labels."} {
		rest := s
		for {
			i := strings.Index(rest, pfx)
			if i < 0 {
				break
			}
			rest = rest[i+len(pfx):]
			j := 0
			for j < len(rest) && (rest[j] == '_' || rest[j] >= 'a' && rest[j] <= 'z' || rest[j] >= 'A' && rest[j] <= 'Z' || rest[j] >= '0' && rest[j] <= '9') {
				j++
			}
			if j > 0 {
				out = append(out, rest[:j])
			}
		}
	}
	return out
}

type grafanaAlertFile struct {
	Groups []struct {
		Name   string `yaml:"name"`
		Folder string `yaml:"folder"`
		Rules  []struct {
			UID   string `yaml:"uid"`
			Title string `yaml:"title"`
			Data  []struct {
				RefID         string         `yaml:"refId"`
				DatasourceUID string         `yaml:"datasourceUid"`
				Model         map[string]any `yaml:"model"`
			} `yaml:"data"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ParseGrafanaAlerts parses a Grafana alerting provisioning file
// (apiVersion: 1, groups[].rules[].data[].model.expr). Server-side expression
// steps (datasourceUid "__expr__" or "-100") and queries without expr are skipped.
func ParseGrafanaAlerts(data []byte) ([]Rule, error) {
	var f grafanaAlertFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode grafana alert yaml: %w", err)
	}
	var out []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			for _, d := range r.Data {
				if d.DatasourceUID == "__expr__" || d.DatasourceUID == "-100" {
					continue
				}
				expr, _ := d.Model["expr"].(string)
				if strings.TrimSpace(expr) == "" {
					continue
				}
				name := r.Title
				if r.UID != "" {
					name = r.UID
				}
				rule := newRule(KindGrafanaAlert, g.Folder+"/"+g.Name, name+" "+d.RefID, expr, nil)
				out = append(out, rule)
			}
		}
	}
	return out, nil
}

// LoadPath loads rule files from a file or, recursively, every .yaml/.yml
// file under a directory. With grafana set the files are Grafana alert
// provisioning files. Per-file errors are returned joined with the rules that loaded.
func LoadPath(path string, grafana bool) ([]Rule, error) {
	parse := ParseFile
	if grafana {
		parse = ParseGrafanaAlerts
	}
	var out []Rule
	var errs []error
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if p != path {
			if ext := strings.ToLower(filepath.Ext(p)); ext != ".yaml" && ext != ".yml" {
				return nil
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read rule file: %w", err))
			return nil
		}
		rs, err := parse(data)
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}
