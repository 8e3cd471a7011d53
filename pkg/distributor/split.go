package distributor

import (
	"errors"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
)

// errNoIngesters is returned when the ring has no ACTIVE ingester.
var errNoIngesters = errors.New("no ACTIVE ingester in the ring; retry later")

// part is what one ingester receives from one request: its series as a
// batch of pkg/record entries, and family metadata.
type part struct {
	owner    ring.Member
	batch    []byte
	series   int
	metadata []prompb.MetricMetadata
}

// governance is what split needs to apply the rules; a nil *governance (or
// one with a nil engine) applies none.
type governance struct {
	eng      *rules.Engine
	types    *rules.TypeCache
	withMeta bool // some rule reads metadata
	g        *governor
	stats    ruleStats
	drop     DropPolicy // nil: no usage drop policy
	usage    usageStats
}

// split places every series of dec by (tenant, metric name), and every 1.0
// metadata entry by (tenant, metric family name), on its owner. With gov,
// the rules run on every series first: a dropped series goes nowhere, a
// changed one is placed by its new name and carries its new labels.
func split(placement *ring.Placement, tenant string, dec *remotewrite.Decoded, gov *governance) (map[string]*part, error) {
	parts := map[string]*part{}
	if len(dec.Request.Timeseries) == 0 && len(dec.Metadata) == 0 {
		return parts, nil
	}
	if gov != nil && gov.eng == nil && gov.drop == nil {
		gov = nil
	}
	var (
		key     []byte
		scratch []byte
		sb      = labels.NewScratchBuilder(16)
		ls      labels.Labels
	)
	add := func(p *part, lbls labels.Labels, ts *writev2.TimeSeries) {
		p.batch, scratch = record.AppendV2(p.batch, scratch, lbls, ts, dec.Request.Symbols)
		p.series++
	}
	get := func(name string) (*part, error) {
		key = ring.Key(key[:0], tenant, name)
		owner, ok := placement.Owner(key)
		if !ok {
			return nil, errNoIngesters
		}
		p, ok := parts[owner.Name]
		if !ok {
			p = &part{owner: owner}
			parts[owner.Name] = p
		}
		return p, nil
	}
	for i := range dec.Request.Timeseries {
		ts := &dec.Request.Timeseries[i]
		name := remotewrite.MetricName(&dec.Request, ts)
		if gov == nil {
			p, err := get(name)
			if err != nil {
				return nil, err
			}
			remotewrite.SeriesLabels(&sb, &dec.Request, ts, &ls)
			add(p, ls, ts)
			continue
		}
		res := rules.Result{Action: rules.Kept}
		if gov.eng != nil {
			res = gov.g.apply(gov.eng, gov.types, gov.withMeta, tenant, name, &dec.Request, ts)
		}
		switch res.Action {
		case rules.Dropped:
			gov.stats.count(&res, ts)
			continue
		case rules.Changed:
			gov.stats.count(&res, ts)
			newN := newName(res.Labels)
			if gov.dropUnused(newN, ts) {
				continue
			}
			p, err := get(newN)
			if err != nil {
				return nil, err
			}
			add(p, res.Labels, ts)
		default:
			if gov.dropUnused(name, ts) {
				continue
			}
			p, err := get(name)
			if err != nil {
				return nil, err
			}
			if res.Labels.IsEmpty() { // no rules ran: only the drop policy
				remotewrite.SeriesLabels(&sb, &dec.Request, ts, &ls)
				res.Labels = ls
			}
			add(p, res.Labels, ts)
		}
	}
	for _, md := range dec.Metadata {
		p, err := get(md.MetricFamilyName)
		if err != nil {
			return nil, err
		}
		p.metadata = append(p.metadata, md)
	}
	return parts, nil
}
