package govstore

import (
	"testing"
	"time"
)

func FuzzDecodeVersion(f *testing.F) {
	v := &Version{Meta: Meta{Number: 3, Parent: 2, Author: "a", Message: "m", Mode: ModeEnforce, Timestamp: time.Unix(1, 0).UTC()}, Body: ruleA}
	v.Hash = ContentHash([]byte(v.Body))
	good, err := EncodeVersion(v)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, uint64(3))
	f.Add([]byte(`{"version":1}`), uint64(1))
	f.Add([]byte(`{`), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, n uint64) {
		v, err := DecodeVersion(b, n)
		if err != nil {
			return
		}
		if v.Number != n || ContentHash([]byte(v.Body)) != v.Hash || !v.Mode.Valid() {
			t.Fatalf("accepted an inconsistent version: %+v", v)
		}
		again, err := EncodeVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeVersion(again, n); err != nil {
			t.Fatalf("re-encoded version does not decode: %v", err)
		}
	})
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte(ruleA), []byte(ruleB))
	f.Add([]byte(""), []byte("a\nb\n"))
	f.Add([]byte("a\r\nb"), []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, _ = Diff(a, b, "a", "b")
	})
}

func FuzzParseDocument(f *testing.F) {
	f.Add([]byte(ruleA))
	f.Add([]byte("cardinality:\n  limits:\n    defaults:\n      max_series_per_metric: 10\n"))
	f.Add([]byte("usage: {drop_unused: {mode: shadow}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, c, err := Normalize(b)
		if err != nil {
			return
		}
		_, c2, err := Normalize(c)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c)
		}
		if string(c) != string(c2) {
			t.Fatalf("canonical form not stable:\n%s\n---\n%s", c, c2)
		}
	})
}
