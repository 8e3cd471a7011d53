package retro

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// queryRead reads series through the Prometheus query API, which Mimir and
// Thanos Query serve: an instant query of a range selector returns the raw
// samples in (time-range, time], one query per series with an exact
// selector (keepExact removes series with more labels). Stale markers are
// not returned by the query API and so are neither copied nor verified.
func (b *HTTPBackend) queryRead(ctx context.Context, series []labels.Labels, start, end int64) ([]Series, error) {
	sels, err := b.selectors(ctx, series)
	if err != nil {
		return nil, err
	}
	// (end-rng, end] holds [start, end] for millisecond timestamps; the
	// filter below also covers left-closed ranges (Prometheus 2).
	rng := strconv.FormatInt(end-start+1, 10) + "ms"
	var out []Series
	for _, sel := range sels {
		var data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric     map[string]string `json:"metric"`
				Values     [][2]any          `json:"values"`
				Histograms []any             `json:"histograms"`
			} `json:"result"`
		}
		if err := b.apiGet(ctx, "query", "/api/v1/query", url.Values{"query": {sel + "[" + rng + "]"}, "time": {msToParam(end)}}, &data); err != nil {
			return nil, err
		}
		if data.ResultType != "matrix" {
			return nil, fmt.Errorf("query %s: answer of type %q, want matrix", sel, data.ResultType)
		}
		for _, r := range data.Result {
			ls := labels.FromMap(r.Metric)
			if len(r.Histograms) > 0 {
				return nil, fmt.Errorf("query: %s has native histogram samples: %w (narrow the selector to float series)", ls, ErrUnsupported)
			}
			s := Series{Labels: ls, Samples: make([]Sample, 0, len(r.Values))}
			for _, v := range r.Values {
				smp, err := querySample(v)
				if err != nil {
					return nil, fmt.Errorf("query %s: %w", sel, err)
				}
				if smp.T >= start && smp.T <= end {
					s.Samples = append(s.Samples, smp)
				}
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// querySample decodes a query API sample: [seconds as a number, value as a
// string].
func querySample(v [2]any) (Sample, error) {
	sec, ok := v[0].(float64)
	str, ok2 := v[1].(string)
	if !ok || !ok2 {
		return Sample{}, fmt.Errorf("sample %v: want [seconds, \"value\"]", v)
	}
	val, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("sample value %q: %w", str, err)
	}
	// Round, not truncate: seconds with 3 decimals are not exact in binary.
	ms := int64(sec*1000 + 0.5)
	if sec < 0 {
		ms = int64(sec*1000 - 0.5)
	}
	return Sample{T: ms, V: val}, nil
}

// noDeleteAPI is why a job cannot delete originals in a backend of kind
// (the route operators have instead), nil when it can.
func noDeleteAPI(kind string) error {
	switch kind {
	case KindMimir:
		return fmt.Errorf("delete: %w: Mimir has no API to delete series (only whole tenants); run with delete_originals: false and let retention age the originals out", ErrUnsupported)
	case KindThanos:
		return fmt.Errorf("delete: %w: Thanos has no API to delete series; run with delete_originals: false, then rewrite the blocks in object storage with `thanos tools bucket rewrite --rewrite.to-delete-config` (docs/retrospective.md)", ErrUnsupported)
	}
	return nil
}

// errNoWriteURL is why a job cannot copy to a backend of kind.
func errNoWriteURL(kind string) error {
	return fmt.Errorf("write: %w: backend.write_url is required to write to %s (Mimir: http://mimir/api/v1/push; Thanos: a Receive's http://receive:19291/api/v1/receive)", ErrUnsupported, kind)
}
