package plugin

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin/abi"
	"github.com/promgov/promgov/pkg/plugin/sdk"
)

// TestCodecRoundTrip: a batch the host encodes is what the SDK decodes, and
// the verdicts the SDK encodes are what the host decodes, in order.
func TestCodecRoundTrip(t *testing.T) {
	in := []Input{
		{Tenant: "team-a", Labels: labels.FromStrings("__name__", "up", "job", "api"), Type: model.MetricTypeGauge},
		{Tenant: "", Labels: labels.FromStrings("__name__", "x", "namespace", "checkout", "ünïcode", "✓")},
		{Tenant: "b", Labels: labels.EmptyLabels(), Type: model.MetricTypeStateset},
		{Tenant: "c", Labels: labels.FromStrings("__name__", "y"), Type: model.MetricTypeHistogram},
	}
	var seen []sdk.Series
	evaluate := func(s sdk.Series) sdk.Verdict {
		seen = append(seen, s)
		switch len(seen) {
		case 1:
			return sdk.Keep()
		case 2:
			return sdk.Tag("mapped", sdk.Label{Name: "cost_center", Value: "cc-1"})
		case 3:
			return sdk.Drop("no labels")
		}
		return sdk.Rewrite("renamed", []sdk.Label{{Name: "__name__", Value: "z"}, {Name: "a", Value: "1"}})
	}
	batch := encodeBatch(nil, in)
	enc, err := sdk.EvaluateBatch(batch, evaluate, nil)
	require.NoError(t, err)
	require.Equal(t, []sdk.Series{
		{Tenant: "team-a", Type: "gauge", Labels: []sdk.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "api"}}},
		{Tenant: "", Type: "unknown", Labels: []sdk.Label{{Name: "__name__", Value: "x"}, {Name: "namespace", Value: "checkout"}, {Name: "ünïcode", Value: "✓"}}},
		{Tenant: "b", Type: "stateset", Labels: []sdk.Label{}},
		{Tenant: "c", Type: "histogram", Labels: []sdk.Label{{Name: "__name__", Value: "y"}}},
	}, seen)

	var sb labels.ScratchBuilder
	out, err := decodeVerdicts(enc, len(in), nil, &sb)
	require.NoError(t, err)
	require.Equal(t, []Verdict{
		{Action: Keep},
		{Action: Tag, Labels: labels.FromStrings("cost_center", "cc-1"), Reason: "mapped"},
		{Action: Drop, Reason: "no labels"},
		{Action: Rewrite, Labels: labels.FromStrings("__name__", "z", "a", "1"), Reason: "renamed"},
	}, out)

	// The decoder copies: changing the buffer afterwards changes nothing.
	for i := range enc {
		enc[i] = 0xff
	}
	require.Equal(t, `{cost_center="cc-1"}`, out[1].Labels.String())
	require.Equal(t, "mapped", out[1].Reason)
}

// TestDecodeVerdictsRejects: every way an output can break the ABI is an
// error, never a panic or a partial result.
func TestDecodeVerdictsRejects(t *testing.T) {
	str := func(b []byte, s string) []byte { return abi.AppendString(b, s) }
	verdict := func(a byte, reason string, lbls ...string) []byte {
		b := str([]byte{a}, reason)
		b = abi.AppendU32(b, uint32(len(lbls)/2))
		for _, l := range lbls {
			b = str(b, l)
		}
		return b
	}
	one := func(v []byte) []byte { return append(abi.AppendU32(nil, 1), v...) }
	cases := map[string]struct {
		out     []byte
		message string
	}{
		"empty":              {nil, "input ends early"},
		"short count":        {[]byte{1, 0}, "input ends early"},
		"no verdict":         {abi.AppendU32(nil, 1), "input ends early"},
		"too many":           {append(abi.AppendU32(nil, 2), append(verdict(0, ""), verdict(0, "")...)...), "2 verdicts for 1 series"},
		"unknown action":     {one(verdict(4, "")), "unknown action 4"},
		"drop with labels":   {one(verdict(1, "", "a", "b")), "drop with 1 labels"},
		"rewrite to nothing": {one(verdict(2, "")), "rewrite to no labels"},
		"empty name":         {one(verdict(3, "", "", "v")), "empty name"},
		"empty value":        {one(verdict(3, "", "n", "")), "empty value"},
		"duplicate":          {one(verdict(2, "", "n", "1", "n", "2")), `label "n" twice`},
		"bad utf-8 reason":   {one(verdict(0, "\xc3")), "not valid UTF-8"},
		"label count lies":   {one(append(str([]byte{3}, ""), 0xff, 0x03, 0, 0)), "need at least"},
		"too many labels":    {one(append(str([]byte{3}, ""), 0xff, 0xff, 0xff, 0xff)), "over the limit"},
		"string too long":    {one(append([]byte{0}, 0xff, 0xff, 0xff, 0x7f)), "over the limit"},
		"trailing":           {append(one(verdict(0, "")), 0), "1 trailing bytes"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var sb labels.ScratchBuilder
			_, err := decodeVerdicts(tc.out, 1, nil, &sb)
			require.ErrorContains(t, err, tc.message)
		})
	}
}

// FuzzDecodeVerdicts: the host's decoder never panics on guest output, and
// whatever it accepts is well-formed and re-encodes to the same bytes.
func FuzzDecodeVerdicts(f *testing.F) {
	enc, err := sdk.EvaluateBatch(encodeBatch(nil, someInputs(2)), func(sdk.Series) sdk.Verdict {
		return sdk.Tag("r", sdk.Label{Name: "a", Value: "b"})
	}, nil)
	require.NoError(f, err)
	f.Add(enc, uint8(2))
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'n', 1, 0, 0, 0, 'v'}, uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, want uint8) {
		var sb labels.ScratchBuilder
		out, err := decodeVerdicts(b, int(want), nil, &sb)
		if err != nil {
			return
		}
		require.Len(t, out, int(want))
		var re []byte
		re = abi.AppendU32(re, uint32(len(out)))
		for _, v := range out {
			require.True(t, v.Action.Valid())
			re = append(re, byte(v.Action))
			re = abi.AppendString(re, v.Reason)
			re = abi.AppendU32(re, uint32(v.Labels.Len()))
			v.Labels.Range(func(l labels.Label) {
				require.NotEmpty(t, l.Name)
				require.NotEmpty(t, l.Value)
				re = abi.AppendString(abi.AppendString(re, l.Name), l.Value)
			})
		}
		// Equal up to label order: the decoder sorts, so compare decoded.
		again, err := decodeVerdicts(re, int(want), nil, &sb)
		require.NoError(t, err)
		require.Equal(t, out, again)
		require.Len(t, re, len(b))
	})
}

// FuzzSDKEvaluateBatch: the guest's batch decoder never panics, and a batch
// the host encoded always decodes.
func FuzzSDKEvaluateBatch(f *testing.F) {
	f.Add(encodeBatch(nil, someInputs(2)))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	keep := func(sdk.Series) sdk.Verdict { return sdk.Keep() }
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := sdk.EvaluateBatch(b, keep, nil)
		if err != nil {
			return
		}
		var sb labels.ScratchBuilder
		n := abi.NewReader(b).U32()
		_, err = decodeVerdicts(out, int(n), nil, &sb)
		require.NoError(t, err)
	})
}
