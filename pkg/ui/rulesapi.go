package ui

import (
	"time"

	"github.com/promgov/promgov/pkg/rules/ruleconfig"
	"github.com/promgov/promgov/pkg/web"
)

// The rules API as the UI reads it: a distributor serves it (pkg/rules),
// and the pages ask it over HTTP like any client, so the UI, which
// ingesters serve too, does not link the rules engine. These are the
// fields of its JSON the pages show; rulesapi_test.go pins them to
// pkg/rules.
const (
	pathRules     = web.APIPrefix + "/rules"
	pathRulesTest = pathRules + "/test"
)

// activeRules is GET pathRules' data (rules.RulesData).
type activeRules struct {
	Hash     string        `json:"hash"`
	LoadedAt time.Time     `json:"loaded_at"`
	Rules    []ruleSummary `json:"rules"`
	YAML     string        `json:"yaml"`
}

// ruleSummary is one active rule (rules.RuleSummary).
type ruleSummary struct {
	Name   string                 `json:"name"`
	Kind   string                 `json:"kind"`
	Mode   ruleconfig.Mode        `json:"mode"`
	Action ruleconfig.Action      `json:"action,omitempty"`
	Scope  ruleconfig.ScopeConfig `json:"scope"`
}

// testRequest is POST pathRulesTest's body for one series
// (rules.TestRequest).
type testRequest struct {
	Tenant string       `json:"tenant,omitempty"`
	Series []testSeries `json:"series,omitempty"`
}

// testSeries is a series in PromQL notation (rules.TestSeries).
type testSeries struct {
	Series string `json:"series,omitempty"`
}

// testResponseData is POST pathRulesTest's data (rules.TestResponseData).
type testResponseData struct {
	Results []testResult `json:"results"`
}

// testResult is what the rules do to one series (rules.TestResult).
type testResult struct {
	Tenant string      `json:"tenant"`
	Input  string      `json:"input"`
	Action string      `json:"action"`
	Output string      `json:"output,omitempty"`
	Rule   string      `json:"rule,omitempty"`
	Reason string      `json:"reason,omitempty"`
	Trace  []traceStep `json:"trace"`
}

// traceStep is one rule's decision on the series (rules.TraceStep).
type traceStep struct {
	Rule    string          `json:"rule"`
	Mode    ruleconfig.Mode `json:"mode"`
	InScope bool            `json:"in_scope"`
	Matched bool            `json:"matched"`
	Effect  string          `json:"effect"`
	Reason  string          `json:"reason,omitempty"`
	After   string          `json:"after,omitempty"`
}
