package distributor

import (
	"errors"

	"github.com/prometheus/prometheus/prompb"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
)

// errNoIngesters is returned when the ring has no ACTIVE ingester.
var errNoIngesters = errors.New("no ACTIVE ingester in the ring; retry later")

// part is what one ingester receives from one request.
type part struct {
	owner    ring.Member
	builder  *remotewrite.Builder
	series   int
	metadata []prompb.MetricMetadata
}

func (p *part) payload() ([]byte, error) {
	if p.series == 0 {
		return nil, nil
	}
	req := p.builder.Request()
	return req.Marshal()
}

// split places every series of dec by (tenant, metric name), and every 1.0
// metadata entry by (tenant, metric family name), on its owner.
func split(placement *ring.Placement, tenant string, dec *remotewrite.Decoded) (map[string]*part, error) {
	parts := map[string]*part{}
	if len(dec.Request.Timeseries) == 0 && len(dec.Metadata) == 0 {
		return parts, nil
	}
	var key []byte
	get := func(name string) (*part, error) {
		key = ring.Key(key[:0], tenant, name)
		owner, ok := placement.Owner(key)
		if !ok {
			return nil, errNoIngesters
		}
		p, ok := parts[owner.Name]
		if !ok {
			p = &part{owner: owner, builder: remotewrite.NewBuilder()}
			parts[owner.Name] = p
		}
		return p, nil
	}
	for i := range dec.Request.Timeseries {
		ts := &dec.Request.Timeseries[i]
		p, err := get(remotewrite.MetricName(&dec.Request, ts))
		if err != nil {
			return nil, err
		}
		p.builder.AddSeries(&dec.Request, ts)
		p.series++
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
