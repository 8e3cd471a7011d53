// Package reservoir keeps, on the ingester that owns a metric, a bounded
// uniform sample of the metric's recently seen series: the input of the
// governance impact preview (docs/governance.md, "Impact preview").
//
// Per (tenant, metric) it keeps the k series with the smallest series hash
// (bottom-k sampling): a uniform sample of the distinct series, whatever
// how often each is pushed, so feeding the same series again changes
// nothing. A series whose hash is above the metric's threshold (the k-th
// smallest hash once k are held) is rejected by one atomic load; only
// pushes the sample gate lets through are looked at at all. A sampled
// series not seen again for max_age leaves, so the sample follows the
// series that are live.
package reservoir
