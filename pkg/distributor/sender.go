package distributor

import "strings"

// senderFamilies are the sender label values of the unsorted-series metric,
// matched case-insensitively against the start of the User-Agent; the set is
// fixed so the label stays bounded.
var senderFamilies = []struct{ prefix, family string }{
	{"prometheus", "prometheus"},
	{"vmagent", "vmagent"},
	{"alloy", "alloy"},
	{"grafanaagent", "grafana-agent"},
	{"opentelemetry", "otel-collector"},
	{"otelcol", "otel-collector"},
	{"promgov", "promgov"},
}

// senderFamily names the kind of agent behind a User-Agent, "other" when it
// is none of the known ones.
func senderFamily(userAgent string) string {
	for _, f := range senderFamilies {
		if len(userAgent) >= len(f.prefix) && strings.EqualFold(userAgent[:len(f.prefix)], f.prefix) {
			return f.family
		}
	}
	return "other"
}
