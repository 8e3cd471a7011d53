package remotewrite

import (
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// SeriesLabels renders the labels of ts, whose refs point into req.Symbols,
// into *into using sb. It reuses sb's buffer: *into is only valid until the
// next call with the same sb, and it must not be kept (copy it to keep it).
// The refs are taken in the order sent, which validation has checked to be
// sorted; ts must be valid against req (as every series of a Decoded
// request is). After the first calls have grown sb's buffer it does not
// allocate.
func SeriesLabels(sb *labels.ScratchBuilder, req *writev2.Request, ts *writev2.TimeSeries, into *labels.Labels) {
	sb.Reset()
	refs := ts.LabelsRefs
	for i := 0; i+1 < len(refs); i += 2 {
		sb.Add(req.Symbols[refs[i]], req.Symbols[refs[i+1]])
	}
	sb.Overwrite(into)
}

// AddSeriesWithLabels is AddSeries with the series' labels replaced by ls
// (which must be sorted and valid, as labels.Builder produces them): the
// governance rules' rewritten labels. Samples, histograms, exemplars and
// metadata are taken from ts as AddSeries does; only the strings ls uses
// enter b's symbols. The strings of ls are referenced, not copied, so ls
// must not live in a reused buffer (such as SeriesLabels' output).
func (b *Builder) AddSeriesWithLabels(src *writev2.Request, ts *writev2.TimeSeries, ls labels.Labels) {
	start := len(b.refs)
	ls.Range(func(l labels.Label) {
		b.refs = append(b.refs, b.symbols.Symbolize(l.Name), b.symbols.Symbolize(l.Value))
	})
	end := len(b.refs)
	b.addSeries(src, ts, b.refs[start:end:end])
}
