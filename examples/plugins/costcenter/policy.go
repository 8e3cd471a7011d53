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
	Mapping map[string]string `json:"mapping"`
	Default string            `json:"default"`
}

// policy is the plugin's state after configure.
type policy struct{ config }

const (
	namespaceLabel  = "namespace"
	costCenterLabel = "cost_center"
)

func (p *policy) configure(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.config); err != nil {
		return fmt.Errorf("costcenter: config is not the expected JSON (%w); want e.g. {\"mapping\": {\"checkout\": \"cc-1001\"}}", err)
	}
	if len(p.Mapping) == 0 {
		return errors.New(`costcenter: mapping is empty; map namespaces to cost centres, e.g. {"mapping": {"checkout": "cc-1001"}}`)
	}
	for ns, cc := range p.Mapping {
		if cc == "" {
			return fmt.Errorf("costcenter: mapping[%q] is empty; give it a cost centre", ns)
		}
	}
	return nil
}

func (p *policy) evaluate(s sdk.Series) sdk.Verdict {
	ns := s.Get(namespaceLabel)
	cc, ok := p.Mapping[ns]
	reason := "namespace " + ns
	if !ok {
		if p.Default == "" {
			return sdk.Keep()
		}
		cc, reason = p.Default, "namespace "+ns+" is not mapped"
	}
	if s.Get(costCenterLabel) == cc {
		return sdk.Keep()
	}
	return sdk.Tag(reason, sdk.Label{Name: costCenterLabel, Value: cc})
}
