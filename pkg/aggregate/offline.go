package aggregate

import (
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/stage"
)

// Offline aggregation: a retrospective job (pkg/retro) folds stored series
// with the rules and the code the ingester uses live, on an Engine of its
// own whose clock is the samples' time. It feeds Process the samples of
// consecutive windows of Window() and calls Close at each window's end, so
// intervals close, inputs are forgotten after inputExpiry and counters run
// on exactly as they would have had the samples arrived live, in order.

// Takes reports whether Process would take a float series of tenant with
// labels ls (sorted, __name__ present) out of what is written: an
// enforced rule without keep_input aggregates it (or drops it, as a
// summary quantile) and no enforced rule needs it written. rule names the
// first such rule, and group identifies the output group: series with the
// same group aggregate together ("" for a series the rule drops). Nothing
// is recorded; the answer depends on the rules' declared types and on
// RememberType, as Process's does.
func (e *Engine) Takes(tenant string, ls labels.Labels) (rule, group string, ok bool) {
	name := ls.Get(model.MetricNameLabel)
	rs := e.set.Load().routing[name]
	if rs == nil {
		return "", "", false
	}
	p := describedSeries(ls, writev2.Metadata_METRIC_TYPE_UNSPECIFIED, false)
	take, keep := false, false
	for _, r := range rs {
		if !r.inScope(tenant, p) || !r.owns(p) || !r.enforce {
			continue
		}
		var d decision
		r.decide(tenant, name, p, &d)
		if d.v.Action != stage.ActionAggregate && d.v.Action != stage.ActionDrop {
			keep = true
			continue
		}
		if !take {
			rule = r.cfg.Name
			if d.drop == "" {
				r.mu.Lock()
				group = r.cfg.Name + "\xff" + string(r.keyOf(tenant, name, d.pt, d.k, p))
				r.mu.Unlock()
			}
		}
		take = true
	}
	if !take || keep {
		return "", "", false
	}
	return rule, group, true
}

// AppendSample appends the float sample (t, v) to a series in the record's
// series form (after its labels).
func AppendSample(dst []byte, t int64, v float64) []byte {
	n := protowire.SizeTag(record.FieldSampleValue) + protowire.SizeFixed64() +
		protowire.SizeTag(record.FieldSampleTS) + protowire.SizeVarint(uint64(t))
	dst = protowire.AppendTag(dst, record.FieldSamples, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(n))
	dst = protowire.AppendTag(dst, record.FieldSampleValue, protowire.Fixed64Type)
	dst = protowire.AppendFixed64(dst, math.Float64bits(v))
	dst = protowire.AppendTag(dst, record.FieldSampleTS, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(t))
}

// Window is the step an offline caller advances its clock by: the
// shortest interval of the rules, so no interval is closed before all
// its samples are in.
func (e *Engine) Window() time.Duration {
	var w int64
	for _, r := range e.set.Load().rules {
		if w == 0 || r.interval < w {
			w = r.interval
		}
	}
	return time.Duration(w) * time.Millisecond
}

// Horizon is how long after the last sample every interval holding it has
// closed: the longest interval plus max_delay of the rules. An offline
// caller ends with Close(last sample + Horizon).
func (e *Engine) Horizon() time.Duration {
	var h int64
	for _, r := range e.set.Load().rules {
		h = max(h, r.interval+r.maxDelay)
	}
	return time.Duration(h) * time.Millisecond
}
