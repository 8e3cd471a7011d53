package rules

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuiltinNormalisers(t *testing.T) {
	all := builtinBit(BuiltinUUID) | builtinBit(BuiltinHexID) | builtinBit(BuiltinNumber) | builtinBit(BuiltinIP) | builtinBit(BuiltinEmail)
	cases := []struct {
		name, in, want string
		set            builtinSet
	}{
		{"number segment", "/users/123/orders", "/users/:id/orders", all},
		{"whole value number", "42", ":id", all},
		{"uuid", "/o/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c", "/o/:uuid", all},
		{"uuid upper", "0F8E2A1C-9B7D-4E6F-A5C3-1D2E3F4A5B6C", ":uuid", all},
		{"hex id", "/blob/deadbeef00112233", "/blob/:hex", all},
		{"short hex not an id", "/blob/deadbeef", "/blob/deadbeef", all},
		{"hex without digit not an id", "/w/abcdefabcdefabcdef", "/w/abcdefabcdefabcdef", all},
		{"ipv4", "10.1.2.3", ":ip", all},
		{"ipv4 out of range", "10.1.2.300", "10.1.2.300", all},
		{"ipv4 too few parts", "10.1.2", "10.1.2", all},
		{"ipv6", "2001:db8::1", ":ip", all},
		{"ipv6 loopback", "::1", ":ip", all},
		{"not ipv6", "a:b", "a:b", all},
		{"email", "/u/bob.smith+x@example.co.uk/x", "/u/:email/x", all},
		{"not email", "bob@localhost", "bob@localhost", all},
		{"query string", "/search?user=123&id=9", "/search?user=:id&id=:id", all},
		{"only numbers enabled", "/u/1/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c", "/u/:id/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c", builtinBit(BuiltinNumber)},
		{"placeholders are stable", "/users/:id/:uuid", "/users/:id/:uuid", all},
		{"empty segments", "//a//", "//a//", all},
		{"mixed alnum", "/v1/items", "/v1/items", all},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.set.replace(c.in)
			require.Equal(t, c.want, got)
			require.Equal(t, c.want != c.in, c.set.matchesAny(c.in))
			// Idempotent.
			require.Equal(t, got, c.set.replace(got))
		})
	}
}

func TestNormalizerChangesMatchesApply(t *testing.T) {
	cases := map[string]NormalizeConfig{
		"trim":           {Labels: []string{"a"}, TrimSpace: true},
		"lower":          {Labels: []string{"a"}, Lowercase: true},
		"regex":          {Labels: []string{"a"}, Regex: "[0-9]+", Replacement: "N"},
		"regex identity": {Labels: []string{"a"}, Regex: "x", Replacement: "x"},
		"builtin":        {Labels: []string{"a"}, Builtin: []string{BuiltinNumber, BuiltinUUID}},
		"maxlen":         {Labels: []string{"a"}, MaxLength: 4},
		"maxlen hash":    {Labels: []string{"a"}, MaxLength: 20, Overflow: OverflowHash},
		"all": {Labels: []string{"a"}, TrimSpace: true, Lowercase: true, Regex: "-+", Replacement: "_",
			Builtin: []string{BuiltinNumber}, MaxLength: 30, Overflow: OverflowHash},
	}
	inputs := []string{"", "x", "abc", " Abc ", "123", "a-b--c", "/u/123", "ÄÖÜ", "abcdefghijklmnopqrstuvwxyz0123456789", "日本語テキストテキストテキスト"}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Rules = []RuleConfig{{Name: "x", Action: ActionRewrite, Labels: &LabelsConfig{Normalize: []NormalizeConfig{c}}}}
			require.NoError(t, cfg.Validate())
			n, err := compileNormalizer(&c)
			require.NoError(t, err)
			for _, in := range inputs {
				out := n.apply(in)
				require.Equal(t, out != in, n.changes(in), "input %q -> %q", in, out)
				if c.MaxLength > 0 {
					require.LessOrEqual(t, len(out), c.MaxLength)
				}
			}
		})
	}
}

func TestShorten(t *testing.T) {
	require.Equal(t, "abc", shorten("abc", 5, false))
	require.Equal(t, "abcde", shorten("abcdefgh", 5, false))
	// Never split a UTF-8 sequence.
	require.Equal(t, "a", shorten("aé", 2, false))
	h1 := shorten(strings.Repeat("a", 40)+"1", 20, true)
	h2 := shorten(strings.Repeat("a", 40)+"2", 20, true)
	require.Len(t, h1, 20)
	require.NotEqual(t, h1, h2, "hash keeps distinct values distinct")
	require.True(t, strings.HasPrefix(h1, "aaa~"))
}
