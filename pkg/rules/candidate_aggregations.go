package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
)

// candidateAggregations compiles the `aggregations:` of a candidate
// configuration for the rules test API. found is false when the candidate
// has no such key (the running aggregation rules are shown); with the key,
// they replace the running ones, and an empty list means none (agg nil).
// The list is decoded strictly, like the ingesters' file: an unknown field
// or an invalid rule is an error naming it.
func candidateAggregations(data []byte) (agg AggregationDescriber, found bool, err error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, false, fmt.Errorf("candidate aggregations: parse yaml: %w", err)
	}
	node, ok := doc["aggregations"]
	if !ok {
		return nil, false, nil
	}
	raw, err := yaml.Marshal(&node)
	if err != nil {
		return nil, true, fmt.Errorf("candidate aggregations: %w", err)
	}
	var rules []aggregate.RuleConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil && !errors.Is(err, io.EOF) {
		return nil, true, fmt.Errorf("candidate aggregations: %w", err)
	}
	e, err := aggregate.New(aggregate.Config{Rules: rules}, nil, nil)
	if err != nil {
		return nil, true, fmt.Errorf("candidate aggregations: %w", err)
	}
	if e == nil {
		return nil, true, nil
	}
	return e, true, nil
}
