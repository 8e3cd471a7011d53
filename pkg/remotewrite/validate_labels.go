package remotewrite

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

const (
	// exemplarMaxLabelRunes bounds the runes of an exemplar's label names
	// and values together (OpenMetrics; Prometheus drops longer ones).
	exemplarMaxLabelRunes = 128
	// insertionSortMaxPairs is the largest label set sortLabelRefs sorts by
	// insertion, at most 120 comparisons; larger ones are sorted in
	// O(n log n) whatever order they come in.
	insertionSortMaxPairs = 16
)

// checkLabelText checks one label's name and value against the name
// validation scheme; a value must be valid UTF-8 under both schemes. name
// is not empty (validateSeries checked).
func checkLabelText(name, value string, opts validationOpts) problem {
	if opts.legacyNames {
		if !isLegacyName(name, false) {
			return problem{kind: problemLabelNameLegacy, s1: name}
		}
		if name == metricNameLabel && !isLegacyName(value, true) {
			return problem{kind: problemMetricNameLegacy, s1: value}
		}
	} else if !opts.symbolsUTF8 && !utf8.ValidString(name) {
		return problem{kind: problemLabelNameUTF8, s1: name}
	}
	if !opts.symbolsUTF8 && !utf8.ValidString(value) {
		return problem{kind: problemLabelValueUTF8, s1: name, s2: value}
	}
	return problem{}
}

// validUTF8 reports whether every symbol is valid UTF-8. Checking the
// symbols once costs less than checking every label: a request repeats its
// label names and many values in every series. Symbols are nearly always
// ASCII, which it checks eight bytes at a time across all of them (about
// twice as fast as utf8.ValidString on short strings), before checking
// each one.
func validUTF8(symbols []string) bool {
	var high uint64 // every byte of every symbol OR-ed together
	for _, s := range symbols {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		for len(b) >= 8 {
			high |= binary.LittleEndian.Uint64(b)
			b = b[8:]
		}
		for _, c := range b {
			high |= uint64(c)
		}
	}
	if high&0x8080808080808080 == 0 {
		return true
	}
	for _, s := range symbols {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// checkUnitText checks the metadata unit, which a backend may turn into a
// __unit__ label (Prometheus's type-and-unit-labels feature).
func checkUnitText(unit string) problem {
	if !utf8.ValidString(unit) {
		return problem{kind: problemUnitUTF8, s1: unit}
	}
	return problem{}
}

// isLegacyName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*, or with
// colon [a-zA-Z_:][a-zA-Z0-9_:]* (metric names).
func isLegacyName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case c == ':' && colon:
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// sortLabelRefs sorts the name/value ref pairs of refs by name in place and
// reports a duplicate name, which sorting makes adjacent. Every ref must be
// in range of symbols and len(refs) even (validateSeries checked). It does
// not allocate. The usual case, a sender appending a few labels (instance,
// job) after the scraped ones, is a short insertion sort.
func sortLabelRefs(symbols []string, refs []uint32) problem {
	if len(refs)/2 <= insertionSortMaxPairs {
		for i := 2; i < len(refs); i += 2 {
			n, v := refs[i], refs[i+1]
			name := symbols[n]
			j := i
			for ; j > 0 && symbols[refs[j-2]] > name; j -= 2 {
				refs[j], refs[j+1] = refs[j-2], refs[j-1]
			}
			refs[j], refs[j+1] = n, v
		}
	} else {
		pairs := unsafe.Slice((*[2]uint32)(unsafe.Pointer(&refs[0])), len(refs)/2)
		slices.SortFunc(pairs, func(a, b [2]uint32) int { return strings.Compare(symbols[a[0]], symbols[b[0]]) })
	}
	for i := 2; i < len(refs); i += 2 {
		if symbols[refs[i]] == symbols[refs[i-2]] {
			return problem{kind: problemDuplicateLabel, s1: symbols[refs[i]]}
		}
	}
	return problem{}
}

// checkExemplarLabels applies the checks Prometheus's exemplar storage
// applies to exemplar i's labels: names not empty and unique (its
// duplicate check also takes an empty first name for a duplicate), and at
// most 128 runes of names and values together. It sorts the labels by name
// in place. refs are in range and even in number.
func checkExemplarLabels(symbols []string, i int, refs []uint32) problem {
	runes := 0
	for a := 0; a < len(refs); a += 2 {
		name := symbols[refs[a]]
		if name == "" {
			return problem{kind: problemExemplarEmptyLabelName, n1: i}
		}
		runes += utf8.RuneCountInString(name) + utf8.RuneCountInString(symbols[refs[a+1]])
		if runes > exemplarMaxLabelRunes {
			return problem{kind: problemExemplarLabelLength, n1: i}
		}
	}
	// Sorted as Prometheus sorts them, a repeated name is adjacent.
	if p := sortLabelRefs(symbols, refs); p.kind != problemNone {
		return problem{kind: problemExemplarDuplicateLabel, n1: i, s1: p.s1}
	}
	return problem{}
}

// contentString formats the problems of label, metadata and exemplar
// content found by this file's checks.
func (p problem) contentString() string {
	switch p.kind {
	case problemExemplarsOnly:
		return fmt.Sprintf("series has %d exemplars but no samples or histograms: a backend does not store exemplars without a sample", p.n1)
	case problemLabelNameUTF8:
		return fmt.Sprintf("label name %s is not valid UTF-8", quote(p.s1))
	case problemLabelNameLegacy:
		return fmt.Sprintf("label name %s is invalid under the legacy name validation scheme: it must match [a-zA-Z_][a-zA-Z0-9_]*", quote(p.s1))
	case problemMetricNameLegacy:
		return fmt.Sprintf("metric name %s is invalid under the legacy name validation scheme: it must match [a-zA-Z_:][a-zA-Z0-9_:]*", quote(p.s1))
	case problemLabelValueUTF8:
		return fmt.Sprintf("value of label %s is not valid UTF-8: %s", quote(p.s1), quote(p.s2))
	case problemUnitUTF8:
		return fmt.Sprintf("metadata unit %s is not valid UTF-8", quote(p.s1))
	case problemExemplarLabelLength:
		return fmt.Sprintf("exemplar %d: label names and values are longer than %d runes together", p.n1, exemplarMaxLabelRunes)
	case problemExemplarDuplicateLabel:
		return fmt.Sprintf("exemplar %d: duplicate label name %s", p.n1, quote(p.s1))
	case problemExemplarEmptyLabelName:
		return fmt.Sprintf("exemplar %d: empty label name", p.n1)
	default:
		return "valid"
	}
}
