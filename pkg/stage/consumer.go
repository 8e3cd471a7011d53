package stage

import "github.com/promgov/promgov/pkg/record"

// Consumer is a Stage that consumes samples: the aggregation rules and the
// cardinality overflow. Its verdict for a series it takes is
// ActionAggregate (the series is not written) or ActionCopy (it is written
// as well), and Consume folds that series' samples into the consumer's
// interval state. A verdict of "" with a Reason lets the series through
// untouched and says why (a type the rule cannot aggregate, the group
// limit).
//
// Consumers run on the ingester (pkg/aggregate's engine), which sees every
// series of the metrics it owns, as entries of pkg/record. The engine
// applies each consumer's mode like pkg/rules does for the other stages (a
// shadow consumer folds into its outputs but never takes the series out of
// the write), and the verdicts are counted in the family every stage
// counts in, promgov_rule_series_total{rule,action,mode}.
//
// Concurrency: Consume is called from many goroutines at once; a Consumer
// guards its own state. in and e belong to the caller and are valid only
// during the call.
type Consumer interface {
	Stage
	// Consume decides for the series of entry e as Eval would and, when
	// the verdict takes it, folds the entry's samples. in carries the
	// tenant and metadata; in.Labels is empty, as the series is e.Series
	// (record-encoded), which the consumer reads itself.
	Consume(in *Input, e *record.Entry) Verdict
}
