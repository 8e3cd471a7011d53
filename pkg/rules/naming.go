package rules

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// namingRule is a compiled NamingConfig.
type namingRule struct {
	legacy, utf8     bool
	snake            bool
	prefixes         []string
	typeSuffixes     bool
	needsLe          bool // the checks look at the le label (type suffixes)
	unitSuffixes     bool
	discouragedUnits []string
}

func compileNaming(c *NamingConfig) *namingRule {
	return &namingRule{
		legacy:           c.Charset == "legacy",
		utf8:             c.Charset == "utf8",
		snake:            c.SnakeCase,
		prefixes:         append([]string(nil), c.RequiredPrefixes...),
		typeSuffixes:     c.TypeSuffixes,
		needsLe:          c.TypeSuffixes,
		unitSuffixes:     c.UnitSuffixes,
		discouragedUnits: append([]string(nil), c.DiscouragedUnits...),
	}
}

// check returns the violations of the metric name joined by "; " ("" when
// none) and whether type checks were skipped for lack of a type. It does not
// allocate when the name complies.
func (n *namingRule) check(ls labels.Labels, md *Metadata) (string, bool) {
	name := ls.Get(model.MetricNameLabel)
	if name == "" {
		return "", false
	}
	typeUnknown := n.typeSuffixes && !md.TypeKnown()
	if n.ok(name, ls.Has(labels.BucketLabel), md) {
		return "", typeUnknown
	}
	return n.describe(name, ls.Has(labels.BucketLabel), md), typeUnknown
}

// ok reports whether name passes every check.
func (n *namingRule) ok(name string, hasLe bool, md *Metadata) bool {
	if n.legacy && !model.LegacyValidation.IsValidMetricName(name) {
		return false
	}
	if n.utf8 && !utf8.ValidString(name) {
		return false
	}
	if n.snake && !isSnakeCase(name) {
		return false
	}
	if len(n.prefixes) > 0 && !hasAnyPrefix(name, n.prefixes) {
		return false
	}
	if n.typeSuffixes && md.TypeKnown() && typeSuffixProblem(name, hasLe, md.Type) != "" {
		return false
	}
	if n.unitSuffixes && md.Unit != "" && !unitOK(name, md) {
		return false
	}
	for _, u := range n.discouragedUnits {
		if hasToken(name, u) {
			return false
		}
	}
	return true
}

// describe lists the violations (called only when ok is false).
func (n *namingRule) describe(name string, hasLe bool, md *Metadata) string {
	var out []string
	if n.legacy && !model.LegacyValidation.IsValidMetricName(name) {
		out = append(out, fmt.Sprintf("name %q has characters outside [a-zA-Z0-9_:]", name))
	}
	if n.utf8 && !utf8.ValidString(name) {
		out = append(out, fmt.Sprintf("name %q is not valid UTF-8", name))
	}
	if n.snake && !isSnakeCase(name) {
		out = append(out, fmt.Sprintf("name %q is not snake_case", name))
	}
	if len(n.prefixes) > 0 && !hasAnyPrefix(name, n.prefixes) {
		out = append(out, fmt.Sprintf("name %q lacks a required prefix %v", name, n.prefixes))
	}
	if n.typeSuffixes && md.TypeKnown() {
		if p := typeSuffixProblem(name, hasLe, md.Type); p != "" {
			out = append(out, fmt.Sprintf("%s %q %s", md.Type, name, p))
		}
	}
	if n.unitSuffixes && md.Unit != "" && !unitOK(name, md) {
		out = append(out, fmt.Sprintf("name %q lacks unit suffix %q", name, "_"+md.Unit))
	}
	for _, u := range n.discouragedUnits {
		if hasToken(name, u) {
			out = append(out, fmt.Sprintf("name %q uses discouraged unit %q", name, u))
		}
	}
	return joinReasons("naming: ", out)
}

// fix rewrites __name__ in lb so that it complies.
func (n *namingRule) fix(lb *labels.Builder, ls labels.Labels, md *Metadata) {
	name := ls.Get(model.MetricNameLabel)
	hasLe := ls.Has(labels.BucketLabel)
	if n.legacy {
		name = toLegacy(name)
	}
	if n.utf8 {
		name = strings.ToValidUTF8(name, "_")
	}
	if n.snake {
		name = toSnakeCase(name)
	}
	if len(n.prefixes) > 0 && !hasAnyPrefix(name, n.prefixes) {
		name = n.prefixes[0] + name
	}
	if n.typeSuffixes && md.TypeKnown() {
		name = fixTypeSuffix(name, hasLe, md.Type)
	}
	if n.unitSuffixes && md.Unit != "" && !unitOK(name, md) {
		base, suffix := splitTypeSuffix(name, md.Type)
		name = base + "_" + md.Unit + suffix
	}
	lb.Set(model.MetricNameLabel, name)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isSnakeCase: [a-z][a-z0-9_:]*, no "__", no trailing "_".
func isSnakeCase(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == ':':
		case c == '_':
			if s[i-1] == '_' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// toSnakeCase converts camelCase, kebab-case and dotted names to snake_case.
func toSnakeCase(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	prevLowerOrDigit := false
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			if prevLowerOrDigit {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
			prevLowerOrDigit = false
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			prevLowerOrDigit = true
		case r == ':':
			b.WriteRune(r)
			prevLowerOrDigit = false
		default:
			b.WriteByte('_')
			prevLowerOrDigit = false
		}
	}
	out := b.String()
	for strings.Contains(out, "__") {
		out = strings.ReplaceAll(out, "__", "_")
	}
	out = strings.Trim(out, "_")
	if out != "" && out[0] >= '0' && out[0] <= '9' {
		out = "m_" + out
	}
	return out
}

// toLegacy replaces characters outside the legacy charset with '_'.
func toLegacy(s string) string {
	if model.LegacyValidation.IsValidMetricName(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9' && i > 0) {
			b.WriteRune(r)
		} else if r >= '0' && r <= '9' {
			b.WriteByte('_')
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// hasToken reports whether word occurs in name as a whole "_"-separated token.
func hasToken(name, word string) bool {
	for i := 0; i+len(word) <= len(name); {
		j := strings.Index(name[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if (start == 0 || name[start-1] == '_') && (end == len(name) || name[end] == '_') {
			return true
		}
		i = start + 1
	}
	return false
}

// typeSuffixProblem returns what is wrong with the suffix of name for type t.
func typeSuffixProblem(name string, hasLe bool, t model.MetricType) string {
	switch t {
	case model.MetricTypeCounter:
		if !strings.HasSuffix(name, "_total") {
			return `must end with "_total"`
		}
	case model.MetricTypeInfo:
		if !strings.HasSuffix(name, "_info") {
			return `must end with "_info"`
		}
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram:
		if hasLe && !strings.HasSuffix(name, "_bucket") {
			return `bucket series (with le) must end with "_bucket"`
		}
		if base, _ := splitTypeSuffix(name, t); strings.HasSuffix(base, "_total") {
			return `family name must not end with "_total"`
		}
	default: // gauge, summary, stateset
		if base, _ := splitTypeSuffix(name, t); strings.HasSuffix(base, "_total") {
			return `must not end with "_total" (reserved for counters)`
		}
	}
	return ""
}

// fixTypeSuffix makes name's suffix match type t.
func fixTypeSuffix(name string, hasLe bool, t model.MetricType) string {
	switch t {
	case model.MetricTypeCounter:
		if !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
	case model.MetricTypeInfo:
		if !strings.HasSuffix(name, "_info") {
			name += "_info"
		}
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram:
		base, suffix := splitTypeSuffix(name, t)
		base = strings.TrimSuffix(base, "_total")
		if hasLe {
			suffix = "_bucket"
		}
		name = base + suffix
	default:
		base, suffix := splitTypeSuffix(name, t)
		name = strings.TrimSuffix(base, "_total") + suffix
	}
	return name
}

// typeSuffixesFor lists the suffixes a series of type t may carry after its
// family name.
func typeSuffixesFor(t model.MetricType) []string {
	switch t {
	case model.MetricTypeCounter:
		return suffixesCounter
	case model.MetricTypeInfo:
		return suffixesInfo
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram:
		return suffixesHistogram
	case model.MetricTypeSummary:
		return suffixesSummary
	case model.MetricTypeGauge, model.MetricTypeStateset:
		return nil
	default:
		return suffixesAny
	}
}

var (
	suffixesCounter   = []string{"_total"}
	suffixesInfo      = []string{"_info"}
	suffixesHistogram = []string{"_bucket", "_sum", "_count"}
	suffixesSummary   = []string{"_sum", "_count"}
	suffixesAny       = []string{"_total", "_bucket", "_sum", "_count", "_info"}
)

// splitTypeSuffix splits name into family base and type suffix.
func splitTypeSuffix(name string, t model.MetricType) (string, string) {
	for _, s := range typeSuffixesFor(t) {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return name[:len(name)-len(s)], s
		}
	}
	return name, ""
}

// unitOK reports whether the family base of name ends with the unit.
func unitOK(name string, md *Metadata) bool {
	base, _ := splitTypeSuffix(name, md.Type)
	return strings.HasSuffix(base, md.Unit) && len(base) > len(md.Unit) && base[len(base)-len(md.Unit)-1] == '_'
}
