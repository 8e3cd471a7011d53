package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/promgov/promgov/pkg/plugin/sdk"
)

// config is the plugin configuration.
type config struct {
	Teams    []string `json:"teams"`
	Action   string   `json:"action"`    // "drop" (default) or "tag"
	Label    string   `json:"label"`     // default "team"
	TagLabel string   `json:"tag_label"` // default "team_violation"
}

// policy is the plugin's state after configure.
type policy struct {
	teams    map[string]struct{}
	tag      bool
	label    string
	tagLabel string
}

func (p *policy) configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("requireteam: config is not the expected JSON (%w); want e.g. {\"teams\": [\"core\"]}", err)
	}
	if len(c.Teams) == 0 {
		return errors.New(`requireteam: teams is empty; list the allowed teams, e.g. {"teams": ["core"]}`)
	}
	switch c.Action {
	case "", "drop":
	case "tag":
		p.tag = true
	default:
		return fmt.Errorf(`requireteam: action %q is not "drop" or "tag"`, c.Action)
	}
	p.label, p.tagLabel = c.Label, c.TagLabel
	if p.label == "" {
		p.label = "team"
	}
	if p.tagLabel == "" {
		p.tagLabel = "team_violation"
	}
	p.teams = make(map[string]struct{}, len(c.Teams))
	for _, t := range c.Teams {
		p.teams[t] = struct{}{}
	}
	return nil
}

func (p *policy) evaluate(s sdk.Series) sdk.Verdict {
	team := s.Get(p.label)
	if _, ok := p.teams[team]; ok {
		return sdk.Keep()
	}
	problem, reason := "unknown", "team "+team+" is not a known team"
	if team == "" {
		problem, reason = "missing", "no "+p.label+" label"
	}
	if p.tag {
		return sdk.Tag(reason, sdk.Label{Name: p.tagLabel, Value: problem})
	}
	return sdk.Drop(reason)
}
