package rules

import (
	"net/netip"
	"strings"
)

// builtinSet is a bit set of built-in normalisers.
type builtinSet uint8

const (
	bitUUID builtinSet = 1 << iota
	bitHexID
	bitNumber
	bitIP
	bitEmail
)

// Placeholders the built-in normalisers substitute.
const (
	PlaceholderUUID   = ":uuid"  // for uuid
	PlaceholderHexID  = ":hex"   // for hex_id
	PlaceholderNumber = ":id"    // for number
	PlaceholderIP     = ":ip"    // for ip
	PlaceholderEmail  = ":email" // for email
)

// minHexIDLen is the shortest run of hex digits treated as an id.
const minHexIDLen = 16

func builtinBit(name string) builtinSet {
	switch name {
	case BuiltinUUID:
		return bitUUID
	case BuiltinHexID:
		return bitHexID
	case BuiltinNumber:
		return bitNumber
	case BuiltinIP:
		return bitIP
	case BuiltinEmail:
		return bitEmail
	}
	return 0
}

// segmentDelims separate the segments the built-ins look at.
const segmentDelims = "/?&=;, "

func isDelim(c byte) bool { return strings.IndexByte(segmentDelims, c) >= 0 }

// placeholder returns the replacement for seg, or "" when no built-in in s
// matches it.
func (s builtinSet) placeholder(seg string) string {
	switch seg {
	case "", PlaceholderUUID, PlaceholderHexID, PlaceholderNumber, PlaceholderIP, PlaceholderEmail:
		return ""
	}
	if s&bitUUID != 0 && isUUID(seg) {
		return PlaceholderUUID
	}
	if s&bitNumber != 0 && isNumber(seg) {
		return PlaceholderNumber
	}
	if s&bitHexID != 0 && isHexID(seg) {
		return PlaceholderHexID
	}
	if s&bitIP != 0 && isIP(seg) {
		return PlaceholderIP
	}
	if s&bitEmail != 0 && isEmail(seg) {
		return PlaceholderEmail
	}
	return ""
}

// matchesAny reports whether any segment of v would be replaced.
func (s builtinSet) matchesAny(v string) bool {
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || isDelim(v[i]) {
			if s.placeholder(v[start:i]) != "" {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// replace substitutes placeholders for every matching segment of v.
func (s builtinSet) replace(v string) string {
	if !s.matchesAny(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || isDelim(v[i]) {
			seg := v[start:i]
			if p := s.placeholder(seg); p != "" {
				b.WriteString(p)
			} else {
				b.WriteString(seg)
			}
			if i < len(v) {
				b.WriteByte(v[i])
			}
			start = i + 1
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isUUID: 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// isNumber: one or more ASCII digits.
func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isHexID: at least minHexIDLen hex digits, at least one of them a decimal
// digit (so long words like "deadbeefcafebabe" in English text still need a
// digit to count as an id).
func isHexID(s string) bool {
	if len(s) < minHexIDLen {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHex(c) {
			return false
		}
		if c >= '0' && c <= '9' {
			digit = true
		}
	}
	return digit
}

// isIP recognises dotted-quad IPv4 and IPv6 addresses.
func isIP(s string) bool {
	if len(s) < 2 {
		return false
	}
	if strings.IndexByte(s, ':') < 0 {
		return isIPv4(s)
	}
	// Cheap pre-check before netip (whose errors allocate).
	colons := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			colons++
		case isHex(c), c == '.':
		default:
			return false
		}
	}
	if colons < 2 {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

func isIPv4(s string) bool {
	parts, val, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || val > 255 {
				return false
			}
			parts++
			val, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits == 3 {
			return false
		}
		val = val*10 + int(c-'0')
		digits++
	}
	return parts == 4
}

// isEmail: local@domain with a dot in the domain, common characters only.
func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isAlnum(c) && !strings.ContainsRune("._%+-", rune(c)) {
			return false
		}
	}
	dot := strings.LastIndexByte(domain, '.')
	if dot <= 0 || dot == len(domain)-1 {
		return false
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if !isAlnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
