package stage

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestVerdictHit(t *testing.T) {
	for name, tc := range map[string]struct {
		v    Verdict
		want bool
	}{
		"nothing":                 {Verdict{}, false},
		"passed through (reason)": {Verdict{Reason: "wrong_type"}, false},
		"drop":                    {Verdict{Action: ActionDrop}, true},
		"aggregate":               {Verdict{Action: ActionAggregate}, true},
		"copy":                    {Verdict{Action: ActionCopy}, true},
	} {
		t.Run(name, func(t *testing.T) { require.Equal(t, tc.want, tc.v.Hit()) })
	}
}

func TestMetadataTypeKnown(t *testing.T) {
	for name, tc := range map[string]struct {
		typ  model.MetricType
		want bool
	}{
		"empty":   {"", false},
		"unknown": {model.MetricTypeUnknown, false},
		"counter": {model.MetricTypeCounter, true},
	} {
		t.Run(name, func(t *testing.T) { require.Equal(t, tc.want, (&Metadata{Type: tc.typ}).TypeKnown()) })
	}
}
