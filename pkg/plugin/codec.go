package plugin

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/plugin/abi"
)

// Input is one series of a batch.
type Input struct {
	Tenant string
	Labels labels.Labels
	Type   model.MetricType // "" or "unknown" when the sender sent no metadata
}

// Action is a verdict's action.
type Action = abi.Action

// The actions a plugin returns.
const (
	Keep    = abi.ActionKeep    // forward the series unchanged
	Drop    = abi.ActionDrop    // drop the series
	Rewrite = abi.ActionRewrite // replace its labels with Verdict.Labels
	Tag     = abi.ActionTag     // add or overwrite Verdict.Labels (none: the rule's tag label)
)

// Verdict is a plugin's decision for one series.
type Verdict struct {
	Action Action
	// Labels is the complete new label set for Rewrite (never empty), the
	// labels to add or overwrite for Tag (possibly empty), empty for Keep
	// and Drop. Sorted, with unique non-empty names and non-empty values;
	// whether the result is a valid series is the caller's to check, as
	// for any rule.
	Labels labels.Labels
	// Reason says why, as the plugin put it.
	Reason string
}

// encodeBatch appends the ABI encoding of in to b (docs/plugins.md,
// "Batch").
func encodeBatch(b []byte, in []Input) []byte {
	b = abi.AppendU32(b, uint32(len(in)))
	for i := range in {
		s := &in[i]
		b = append(b, abi.TypeCode(string(s.Type)))
		b = abi.AppendString(b, s.Tenant)
		b = abi.AppendU32(b, uint32(s.Labels.Len()))
		s.Labels.Range(func(l labels.Label) {
			b = abi.AppendString(b, l.Name)
			b = abi.AppendString(b, l.Value)
		})
	}
	return b
}

// decodeVerdicts decodes exactly want verdicts from b (docs/plugins.md,
// "Verdicts") and appends them to out. It copies what it keeps: b is guest
// memory, reused by the next call. Anything but a well-formed encoding is
// an error.
func decodeVerdicts(b []byte, want int, out []Verdict, sb *labels.ScratchBuilder) ([]Verdict, error) {
	r := abi.NewReader(b)
	n := r.U32()
	if err := r.Err(); err != nil {
		return out, err
	}
	if int64(n) != int64(want) {
		return out, fmt.Errorf("%d verdicts for %d series", n, want)
	}
	for i := 0; i < want; i++ {
		v, err := decodeVerdict(r, sb)
		if err != nil {
			return out, fmt.Errorf("verdict %d: %w", i, err)
		}
		out = append(out, v)
	}
	r.End()
	return out, r.Err()
}

func decodeVerdict(r *abi.Reader, sb *labels.ScratchBuilder) (Verdict, error) {
	a := abi.Action(r.U8())
	reason := r.Bytes()
	nl := r.Count("labels", abi.MaxLabels, 8)
	if err := r.Err(); err != nil {
		return Verdict{}, err
	}
	if !a.Valid() {
		return Verdict{}, fmt.Errorf("unknown action %d", uint8(a))
	}
	v := Verdict{Action: a}
	if len(reason) > 0 {
		v.Reason = string(reason)
	}
	switch {
	case (a == Keep || a == Drop) && nl > 0:
		return Verdict{}, fmt.Errorf("%s with %d labels (want none)", a, nl)
	case a == Rewrite && nl == 0:
		return Verdict{}, errors.New("rewrite to no labels (drop the series instead)")
	case nl == 0:
		return v, nil
	}
	sb.Reset()
	for j := 0; j < nl; j++ {
		name, value := r.Bytes(), r.Bytes()
		if err := r.Err(); err != nil {
			return Verdict{}, err
		}
		if len(name) == 0 {
			return Verdict{}, fmt.Errorf("label %d: empty name", j)
		}
		if len(value) == 0 {
			return Verdict{}, fmt.Errorf("label %q: empty value (an empty value means no label: rewrite without it)", name)
		}
		sb.Add(string(name), string(value))
	}
	sb.Sort()
	v.Labels = sb.Labels()
	if dup, has := v.Labels.HasDuplicateLabelNames(); has {
		return Verdict{}, fmt.Errorf("label %q twice", dup)
	}
	return v, nil
}
