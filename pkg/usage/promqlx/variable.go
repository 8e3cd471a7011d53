package promqlx

import (
	"strings"
)

// ExtractVariableQuery extracts usage from a Grafana Prometheus template
// variable query: label_values(label), label_values(selector, label),
// label_names(selector), metrics(regex), query_result(expr) or a plain PromQL
// query. label_values(label) without a selector reads no specific metric and
// returns empty Refs.
func ExtractVariableQuery(q string) (*Refs, error) {
	q = strings.TrimSpace(q)
	fn, args, ok := splitCall(q)
	if !ok {
		return Extract(q)
	}
	switch fn {
	case "label_values":
		parts := splitTopLevel(args)
		if len(parts) < 2 {
			return NewRefs(), nil
		}
		sel := strings.Join(parts[:len(parts)-1], ",")
		r, err := Extract(sel)
		if err != nil {
			return nil, err
		}
		r.AddLabels(strings.TrimSpace(parts[len(parts)-1]))
		r.reduceToReferenced()
		return r, nil
	case "label_names":
		if strings.TrimSpace(args) == "" {
			return NewRefs(), nil
		}
		r, err := Extract(args)
		if err != nil {
			return nil, err
		}
		r.reduceToReferenced()
		return r, nil
	case "metrics":
		re := strings.TrimSpace(args)
		r := NewRefs()
		// Grafana's metrics(regex) is an unanchored search.
		r.Patterns = append(r.Patterns, NewPattern(".*(?:"+placeholderRegex(Substitute(re, false))+").*", false, MetricUse{}))
		return r, nil
	case "query_result":
		return Extract(args)
	}
	return Extract(q)
}

// splitCall splits "fn(args)" into fn and args when q is exactly one call of
// a Grafana variable function.
func splitCall(q string) (fn, args string, ok bool) {
	i := strings.IndexByte(q, '(')
	if i <= 0 || !strings.HasSuffix(q, ")") {
		return "", "", false
	}
	fn = strings.TrimSpace(q[:i])
	switch fn {
	case "label_values", "label_names", "metrics", "query_result":
	default:
		return "", "", false
	}
	return fn, q[i+1 : len(q)-1], true
}

// splitTopLevel splits s on commas outside (), {}, [] and quotes.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '{' || c == '[':
			depth++
		case c == ')' || c == '}' || c == ']':
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// LegendLabels returns the label names referenced by a Grafana legend format
// such as "{{instance}} - {{ job }}".
func LegendLabels(format string) []string {
	var out []string
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			return out
		}
		j := strings.Index(format[i+2:], "}}")
		if j < 0 {
			return out
		}
		name := strings.TrimSpace(format[i+2 : i+2+j])
		if name != "" && isIdentRun(name) && !strings.ContainsAny(name, ":.") {
			out = append(out, name)
		}
		format = format[i+2+j+2:]
	}
}

// reduceToReferenced marks every use as reading only the referenced labels
// (label_values/label_names read one label's values or the names, not series).
func (r *Refs) reduceToReferenced() {
	for _, u := range r.Metrics {
		u.AllLabels = false
	}
	for _, p := range r.Patterns {
		p.Use.AllLabels = false
	}
}
