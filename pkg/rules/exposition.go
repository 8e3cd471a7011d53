package rules

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql/parser"
)

// parseExposition turns a Prometheus text (or OpenMetrics, by content type)
// exposition into test series; # TYPE and # UNIT lines become metadata of
// the series of their family. Repeated series are kept once.
func parseExposition(b []byte, contentType string) ([]TestSeries, error) {
	st := labels.NewSymbolTable()
	var p textparse.Parser
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/openmetrics-text" {
		p = textparse.NewOpenMetricsParser(b, st)
	} else {
		p = textparse.NewPromParser(b, st, false)
	}
	types := map[string]model.MetricType{}
	units := map[string]string{}
	seen := map[string]struct{}{}
	var out []TestSeries
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse exposition: %w", err)
		}
		switch entry {
		case textparse.EntryType:
			name, t := p.Type()
			types[string(name)] = t
		case textparse.EntryUnit:
			name, u := p.Unit()
			units[string(name)] = string(u)
		case textparse.EntrySeries, textparse.EntryHistogram:
			var ls labels.Labels
			p.Labels(&ls)
			key := ls.String()
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			if len(out) >= MaxTestSeries {
				return nil, fmt.Errorf("exposition has more than %d series", MaxTestSeries)
			}
			name := ls.Get(model.MetricNameLabel)
			family := familyOf(name, func(f string) bool { _, ok := types[f]; return ok })
			out = append(out, TestSeries{Labels: ls.Map(), Type: string(types[family]), Unit: units[family]})
		}
	}
	return out, nil
}

// familyOf returns the metric family of a series name: the name itself if
// known, else the name without one of the usual type suffixes if that is
// known, else the name.
func familyOf(name string, known func(string) bool) string {
	if known(name) {
		return name
	}
	for _, suf := range lookupSuffixes {
		if base, ok := strings.CutSuffix(name, suf); ok && base != "" && known(base) {
			return base
		}
	}
	return name
}

// parseSeries parses PromQL series notation such as `up{job="api"}`.
func parseSeries(s string) (labels.Labels, error) {
	ls, err := parser.NewParser(parser.Options{}).ParseMetric(s)
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("parse series %q: %w", s, err)
	}
	return ls, nil
}

// labelsFromMap builds labels from a map, skipping empty values.
func labelsFromMap(m map[string]string) labels.Labels {
	b := labels.NewScratchBuilder(len(m))
	for k, v := range m {
		if v != "" {
			b.Add(k, v)
		}
	}
	b.Sort()
	return b.Labels()
}
