// Package promqlx extracts metric and label usage from PromQL expressions as
// they appear in Grafana dashboards, rule files and query logs. It substitutes
// Grafana template variables and macros so that the expressions parse with
// the upstream promql/parser, and walks the resulting AST.
//
// Everything in this package is stateless and safe for concurrent use.
package promqlx

import (
	"strings"
)

// Placeholder replaces a Grafana variable that sits in a metric-name, label-name
// or label-value position. Metric names that contain it are turned into name
// patterns (the variable could expand to anything) by Extract.
const Placeholder = "__promgov_var__"

// durationPlaceholder replaces variables used as a range or offset.
const durationPlaceholder = "5m"

// numberPlaceholder replaces variables used as a number (topk, @ modifiers).
const numberPlaceholder = "1"

type varToken struct {
	start, end int // byte offsets of the whole token in the input
}

// scanVars returns every Grafana variable/macro token in s, in order.
// Recognised forms: $name, ${name}, ${name:format}, [[name]], [[name:format]].
func scanVars(s string) []varToken {
	var out []varToken
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			if j := strings.IndexByte(s[i+2:], '}'); j >= 0 {
				out = append(out, varToken{i, i + 2 + j + 1})
				i += 2 + j
			}
		case s[i] == '$' && i+1 < len(s) && isIdentByte(s[i+1]):
			j := i + 1
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			out = append(out, varToken{i, j})
			i = j - 1
		case s[i] == '[' && strings.HasPrefix(s[i:], "[[") && i+2 < len(s) && isIdentByte(s[i+2]):
			if j := strings.Index(s[i+2:], "]]"); j >= 0 && isIdentRun(s[i+2:i+2+j]) {
				out = append(out, varToken{i, i + 2 + j + 2})
				i += 2 + j + 1
			}
		}
	}
	return out
}

func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// isIdentRun reports whether s looks like a variable reference inside [[...]]
// (a name optionally followed by :format).
func isIdentRun(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) && s[i] != ':' && s[i] != '.' {
			return false
		}
	}
	return true
}

// varName returns the bare variable name of a token ("$__interval" → "__interval").
func varName(tok string) string {
	switch {
	case strings.HasPrefix(tok, "${"):
		tok = tok[2 : len(tok)-1]
	case strings.HasPrefix(tok, "[["):
		tok = tok[2 : len(tok)-2]
	default:
		tok = tok[1:]
	}
	if i := strings.IndexAny(tok, ":."); i >= 0 {
		tok = tok[:i]
	}
	return tok
}

// numericMacros expand to plain numbers in Grafana.
var numericMacros = map[string]bool{
	"__interval_ms": true, "__range_s": true, "__range_ms": true,
	"__from": true, "__to": true, "__rate_interval_ms": true,
}

// durationMacros expand to durations in Grafana.
var durationMacros = map[string]bool{
	"__interval": true, "__rate_interval": true, "__range": true, "__auto": true,
	"__auto_interval": true,
}

// Substitute replaces Grafana variables and macros in expr so that it parses
// as PromQL. numberVars controls what a variable outside quotes, brackets and
// offsets becomes: a placeholder identifier (false) or the number 1 (true).
// Duration macros become "5m", numeric macros "1"; variables inside quoted
// strings become Placeholder; variables inside [...] or after offset become
// "5m". Callers normally use Parse, which tries both numberVars settings.
func Substitute(expr string, numberVars bool) string {
	toks := scanVars(expr)
	if len(toks) == 0 {
		return expr
	}
	quoted := quoteMask(expr)
	var b strings.Builder
	b.Grow(len(expr) + 16*len(toks))
	last := 0
	for _, t := range toks {
		b.WriteString(expr[last:t.start])
		last = t.end
		name := varName(expr[t.start:t.end])
		switch {
		case quoted[t.start]:
			if numericMacros[name] {
				b.WriteString(numberPlaceholder)
			} else if durationMacros[name] {
				b.WriteString(durationPlaceholder)
			} else {
				b.WriteString(Placeholder)
			}
		case inBrackets(expr, t.start) || afterKeyword(expr[:t.start], "offset"):
			if numericMacros[name] {
				// e.g. [${__range_s}s]: the unit follows the number.
				b.WriteString(numberPlaceholder)
			} else {
				b.WriteString(durationPlaceholder)
			}
		case numericMacros[name] || afterKeyword(expr[:t.start], "@"):
			b.WriteString(numberPlaceholder)
		case durationMacros[name]:
			b.WriteString(durationPlaceholder)
		case numberVars:
			b.WriteString(numberPlaceholder)
		default:
			b.WriteString(Placeholder)
		}
	}
	b.WriteString(expr[last:])
	return b.String()
}

// quoteMask marks, for each byte of s, whether it is inside a quoted string.
func quoteMask(s string) []bool {
	mask := make([]bool, len(s))
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q == 0 && (c == '"' || c == '\'' || c == '`'):
			q = c
		case q != 0 && c == '\\' && q != '`':
			mask[i] = true
			if i+1 < len(s) {
				i++
				mask[i] = true
			}
			continue
		case q != 0 && c == q:
			q = 0
		case q != 0:
			mask[i] = true
		}
	}
	return mask
}

// inBrackets reports whether position pos is inside a [...] range/subquery
// (unquoted), looking backwards for an unmatched '['.
func inBrackets(s string, pos int) bool {
	depth := 0
	for i := pos - 1; i >= 0; i-- {
		switch s[i] {
		case ']':
			depth++
		case '[':
			if depth == 0 {
				return true
			}
			depth--
		case '(', ')', '{', '}', ',':
			return false
		}
	}
	return false
}

func afterKeyword(prefix, kw string) bool {
	p := strings.TrimRight(prefix, " \t\n")
	if !strings.HasSuffix(p, kw) {
		return false
	}
	p = p[:len(p)-len(kw)]
	return kw == "@" || p == "" || !isIdentByte(p[len(p)-1])
}
