package reservoir

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkOffer is the ingester hook's cost per series of a push of 1000
// series: 10 metrics of 100 series (a full sample of 64 each) or 100
// metrics of 10 (all sampled), with the gate open on every push, and a
// push the gate lets by.
func BenchmarkOffer(b *testing.B) {
	for _, tc := range []struct {
		name            string
		metrics, series int
		interval        time.Duration
	}{
		{"gate_open/10x100_series", 10, 100, 0},
		{"gate_open/100x10_series", 100, 10, 0},
		{"gate_closed/10x100_series", 10, 100, time.Hour},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var all []labels.Labels
			for m := range tc.metrics {
				for i := range tc.series {
					all = append(all, labels.FromStrings(model.MetricNameLabel, fmt.Sprintf("http_requests_%d_total", m),
						"instance", "10.0.0."+strconv.Itoa(i)+":9100", "job", "api", "code", "200"))
				}
			}
			batch, names := batchOf(0, all...)
			cfg := DefaultConfig()
			cfg.SampleInterval = tc.interval
			r := New(cfg, nil)
			now := time.Unix(1_700_000_000, 0)
			r.Offer("t", batch, names, now) // warm: the samples are full
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r.Offer("t", batch, names, now.Add(time.Duration(i)*time.Millisecond))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(all)), "ns/series")
		})
	}
}
