package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// labelsRule is a compiled LabelsConfig.
type labelsRule struct {
	required  []string
	forbidden []string
	allowed   map[string]struct{}
	normalize []*normalizer
}

func compileLabels(c *LabelsConfig) (*labelsRule, error) {
	r := &labelsRule{required: slices.Clone(c.Required), forbidden: slices.Clone(c.Forbidden)}
	if len(c.Allowed) > 0 {
		r.allowed = make(map[string]struct{}, len(c.Allowed)+1)
		r.allowed[model.MetricNameLabel] = struct{}{}
		for _, n := range c.Allowed {
			r.allowed[n] = struct{}{}
		}
	}
	for i := range c.Normalize {
		n, err := compileNormalizer(&c.Normalize[i])
		if err != nil {
			return nil, fmt.Errorf("labels.normalize[%d]: %w", i, err)
		}
		r.normalize = append(r.normalize, n)
	}
	return r, nil
}

// check returns the violations ("" when none); no allocation when none.
func (r *labelsRule) check(ls labels.Labels) string {
	if r.ok(ls) {
		return ""
	}
	var out []string
	for _, n := range r.required {
		if !ls.Has(n) {
			out = append(out, fmt.Sprintf("missing required label %q", n))
		}
	}
	for _, n := range r.forbidden {
		if ls.Has(n) {
			out = append(out, fmt.Sprintf("forbidden label %q", n))
		}
	}
	if r.allowed != nil {
		ls.Range(func(l labels.Label) {
			if _, ok := r.allowed[l.Name]; !ok {
				out = append(out, fmt.Sprintf("label %q not in allowed list", l.Name))
			}
		})
	}
	for _, n := range r.normalize {
		for _, name := range n.labels {
			if v := ls.Get(name); v != "" && n.changes(v) {
				out = append(out, fmt.Sprintf("label %q value %q is not normalised", name, v))
			}
		}
	}
	return joinReasons("labels: ", out)
}

func (r *labelsRule) ok(ls labels.Labels) bool {
	for _, n := range r.required {
		if !ls.Has(n) {
			return false
		}
	}
	for _, n := range r.forbidden {
		if ls.Has(n) {
			return false
		}
	}
	if r.allowed != nil {
		bad := false
		ls.Range(func(l labels.Label) {
			if _, ok := r.allowed[l.Name]; !ok {
				bad = true
			}
		})
		if bad {
			return false
		}
	}
	for _, n := range r.normalize {
		for _, name := range n.labels {
			if v := ls.Get(name); v != "" && n.changes(v) {
				return false
			}
		}
	}
	return true
}

// fix removes forbidden and non-allowed labels and normalises values.
func (r *labelsRule) fix(lb *labels.Builder) {
	lb.Del(r.forbidden...)
	if r.allowed != nil {
		lb.Range(func(l labels.Label) {
			if _, ok := r.allowed[l.Name]; !ok {
				lb.Del(l.Name)
			}
		})
	}
	for _, n := range r.normalize {
		for _, name := range n.labels {
			if v := lb.Get(name); v != "" {
				lb.Set(name, n.apply(v))
			}
		}
	}
}

// normalizer is a compiled NormalizeConfig.
type normalizer struct {
	labels    []string
	trim      bool
	lower     bool
	re        *regexp.Regexp
	repl      string
	builtins  builtinSet
	maxLen    int
	overflowH bool
}

func compileNormalizer(c *NormalizeConfig) (*normalizer, error) {
	n := &normalizer{
		labels: slices.Clone(c.Labels), trim: c.TrimSpace, lower: c.Lowercase, repl: c.Replacement,
		maxLen: c.MaxLength, overflowH: c.Overflow == OverflowHash,
	}
	if c.Regex != "" {
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex: %w", err)
		}
		n.re = re
	}
	for _, b := range c.Builtin {
		n.builtins |= builtinBit(b)
	}
	return n, nil
}

// changes reports whether apply would change v, without allocating unless
// the regex step matches. Each step either changes v (then the answer is
// yes) or leaves it as is for the next step, so the answer is exact.
func (n *normalizer) changes(v string) bool {
	if n.trim && strings.TrimSpace(v) != v {
		return true
	}
	if n.lower && strings.ToLower(v) != v {
		return true
	}
	if n.re != nil && n.re.MatchString(v) && n.re.ReplaceAllString(v, n.repl) != v {
		return true
	}
	if n.builtins != 0 && n.builtins.matchesAny(v) {
		return true
	}
	return n.maxLen > 0 && len(v) > n.maxLen
}

// apply runs every step on v.
func (n *normalizer) apply(v string) string {
	if n.trim {
		v = strings.TrimSpace(v)
	}
	if n.lower {
		v = strings.ToLower(v)
	}
	if n.re != nil {
		v = n.re.ReplaceAllString(v, n.repl)
	}
	if n.builtins != 0 {
		v = n.builtins.replace(v)
	}
	if n.maxLen > 0 {
		v = shorten(v, n.maxLen, n.overflowH)
	}
	return v
}

// shorten cuts v to at most maxLen bytes (at a UTF-8 boundary); with hash it
// keeps a prefix and appends "~" and the xxhash of the whole value.
func shorten(v string, maxLen int, hash bool) string {
	if len(v) <= maxLen {
		return v
	}
	if !hash {
		return v[:runeCut(v, maxLen)]
	}
	return fmt.Sprintf("%s~%016x", v[:runeCut(v, maxLen-hashSuffixLen)], xxhash.Sum64String(v))
}

// runeCut returns the largest cut <= n that does not split a UTF-8 sequence.
func runeCut(v string, n int) int {
	for n > 0 && n < len(v) && v[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

// limitsRule is a compiled LimitsConfig.
type limitsRule struct {
	maxLabels, maxName, maxValue int
	hash                         bool
}

func compileLimits(c *LimitsConfig) *limitsRule {
	return &limitsRule{maxLabels: c.MaxLabels, maxName: c.MaxLabelNameLength, maxValue: c.MaxLabelValueLength, hash: c.ValueOverflow == OverflowHash}
}

// check returns the violations ("" when none); no allocation when none.
func (r *limitsRule) check(ls labels.Labels) string {
	n, longName, longValue := 0, "", ""
	ls.Range(func(l labels.Label) {
		n++
		if r.maxName > 0 && len(l.Name) > r.maxName && longName == "" {
			longName = l.Name
		}
		if r.maxValue > 0 && l.Name != model.MetricNameLabel && len(l.Value) > r.maxValue && longValue == "" {
			longValue = l.Name
		}
	})
	tooMany := r.maxLabels > 0 && n > r.maxLabels
	if !tooMany && longName == "" && longValue == "" {
		return ""
	}
	var out []string
	if tooMany {
		out = append(out, fmt.Sprintf("%d labels exceed max_labels %d", n, r.maxLabels))
	}
	if longName != "" {
		out = append(out, fmt.Sprintf("label name %q exceeds max_label_name_length %d", longName, r.maxName))
	}
	if longValue != "" {
		out = append(out, fmt.Sprintf("value of label %q exceeds max_label_value_length %d", longValue, r.maxValue))
	}
	return joinReasons("limits: ", out)
}

// fix shortens over-long values (the only fixable limit).
func (r *limitsRule) fix(lb *labels.Builder) {
	if r.maxValue == 0 {
		return
	}
	lb.Range(func(l labels.Label) {
		if l.Name != model.MetricNameLabel && len(l.Value) > r.maxValue {
			lb.Set(l.Name, shorten(l.Value, r.maxValue, r.hash))
		}
	})
}

// joinReasons renders violations as "<prefix>a; b; c" with one allocation.
func joinReasons(prefix string, out []string) string {
	n := len(prefix) + 2*len(out)
	for _, s := range out {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	for i, s := range out {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}
