package mixin

import (
	"strings"
)

// RunbookURL is where each alert's runbook_url points: the alert's section
// of docs/runbook.md (GitHub anchors are the lower-cased heading).
const RunbookURL = "https://github.com/promgov/promgov/blob/main/docs/runbook.md#"

// Rule is one alerting or recording rule.
type Rule struct {
	// Alert is the alert name (alerting rules), Record the series name
	// (recording rules); exactly one is set.
	Alert  string `yaml:"alert,omitempty"`
	Record string `yaml:"record,omitempty"`
	Expr   string `yaml:"expr"`
	// For is how long the condition must hold before the alert fires.
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Group is a rule group as Prometheus loads it.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []Group `yaml:"groups"`
}

// alert builds an alerting rule with its runbook link.
func alert(name, severity, expr, forDur, summary, description string) Rule {
	return Rule{
		Alert:  name,
		Expr:   expr,
		For:    forDur,
		Labels: map[string]string{"severity": severity},
		Annotations: map[string]string{
			"summary":     summary,
			"description": description,
			"runbook_url": RunbookURL + strings.ToLower(name),
		},
	}
}

// Alerts returns promgov's alerting rules. Thresholds are in the
// expressions; docs/runbook.md lists them with what to do.
func Alerts() RuleFile {
	return RuleFile{Groups: []Group{
		{Name: "promgov-forwarding", Rules: []Rule{
			alert("PromgovForwardingFailing", "critical",
				`max by (instance) (promgov_forward_backoff_seconds) > 0`, "10m",
				"promgov ingester {{ $labels.instance }} cannot write to its backend.",
				"The forwarder of {{ $labels.instance }} has been backing off for 10 minutes: every request to the backend fails with a retryable error. Data waits in the WAL."),
			alert("PromgovForwardDroppingSamples", "warning",
				`sum by (instance, reason) (rate(promgov_forward_dropped_samples_total[5m])) > 0`, "15m",
				"promgov ingester {{ $labels.instance }} drops samples the backend refuses ({{ $labels.reason }}).",
				"{{ $labels.instance }} drops {{ $value | humanize }} samples/s because the backend answered {{ $labels.reason }}; those samples are lost."),
		}},
		{Name: "promgov-wal", Rules: []Rule{
			alert("PromgovWALOldestUnsentAgeHigh", "warning",
				`max by (instance) (promgov_wal_oldest_uncommitted_age_seconds) > 600`, "5m",
				"promgov ingester {{ $labels.instance }} has WAL data older than 10 minutes not yet forwarded.",
				"The oldest WAL record of {{ $labels.instance }} not acknowledged by the backend is {{ $value | humanizeDuration }} old."),
			alert("PromgovWALOldestUnsentAgeCritical", "critical",
				`max by (instance) (promgov_wal_oldest_uncommitted_age_seconds) > 3600`, "5m",
				"promgov ingester {{ $labels.instance }} has WAL data older than 1 hour not yet forwarded.",
				"The oldest WAL record of {{ $labels.instance }} not acknowledged by the backend is {{ $value | humanizeDuration }} old; backends may refuse samples this old."),
			alert("PromgovWALBacklogGrowing", "warning",
				`deriv(promgov_wal_size_bytes[30m]) > 0 and promgov_wal_oldest_uncommitted_age_seconds > 300`, "30m",
				"promgov ingester {{ $labels.instance }}'s WAL backlog has grown for 30 minutes.",
				"The WAL of {{ $labels.instance }} grows while its oldest unsent record is over 5 minutes old: the forwarder sends less than it receives."),
			alert("PromgovWALCorruption", "warning",
				`increase(promgov_wal_corrupt_records_total[15m]) > 0 or increase(promgov_forward_undecodable_records_total[15m]) > 0`, "",
				"promgov ingester {{ $labels.instance }} skipped corrupt WAL records.",
				"{{ $labels.instance }} skipped corrupt or undecodable WAL records in the last 15 minutes; each lost at least one record."),
			alert("PromgovWALAppendFailing", "critical",
				`sum by (instance) (rate(promgov_wal_append_failures_total[5m])) > 0 or sum by (instance) (rate(promgov_wal_fsync_failures_total[5m])) > 0`, "5m",
				"promgov ingester {{ $labels.instance }} cannot append to its WAL.",
				"WAL appends or fsyncs of {{ $labels.instance }} fail; it refuses pushes (429/503 to senders)."),
		}},
		{Name: "promgov-config", Rules: []Rule{
			alert("PromgovConfigReloadFailed", "warning",
				`max by (instance) (promgov_config_last_reload_successful) == 0`, "5m",
				"promgov {{ $labels.instance }} failed to reload its configuration.",
				"The last configuration reload of {{ $labels.instance }} failed; it keeps running the previous configuration."),
		}},
		{Name: "promgov-ring", Rules: []Rule{
			alert("PromgovRingMemberUnhealthy", "warning",
				`sum by (instance) (promgov_ring_members{role="ingester", state!="ACTIVE"}) > 0`, "10m",
				"promgov {{ $labels.instance }} sees ingesters stuck outside ACTIVE.",
				"{{ $labels.instance }} has seen {{ $value }} ingesters JOINING or LEAVING for 10 minutes."),
			alert("PromgovGossipUnhealthy", "warning",
				`max by (instance) (promgov_ring_gossip_health_score) > 2`, "10m",
				"promgov {{ $labels.instance }} is slow to answer gossip probes.",
				"memberlist's health score of {{ $labels.instance }} is {{ $value }} (0 is healthy)."),
			alert("PromgovRingPlacementDiverged", "warning",
				`count(count by (fingerprint) (count_values("fingerprint", promgov_ring_placement_fingerprint))) > 1`, "5m",
				"promgov members disagree on the ring placement.",
				"{{ $value }} different placements are in use for 5 minutes; series of a metric may land on more than one ingester."),
			alert("PromgovNoActiveIngesters", "critical",
				`max by (instance) (promgov_ring_active_ingesters) == 0`, "2m",
				"promgov {{ $labels.instance }} sees no ACTIVE ingester.",
				"{{ $labels.instance }} has no ingester to push to; every write is answered 503."),
		}},
		{Name: "promgov-write-path", Rules: []Rule{
			alert("PromgovDistributorErrors", "warning",
				`sum by (instance) (rate(promgov_distributor_requests_total{code=~"5.."}[5m])) / sum by (instance) (rate(promgov_distributor_requests_total[5m])) > 0.05`, "10m",
				"promgov distributor {{ $labels.instance }} answers over 5% of writes with 5xx.",
				"{{ $value | humanizePercentage }} of remote-write requests to {{ $labels.instance }} fail with 5xx; senders retry."),
			alert("PromgovRequestPanics", "warning",
				`increase(promgov_request_panics_total[10m]) > 0`, "",
				"promgov {{ $labels.instance }} had a request panic ({{ $labels.edge }} {{ $labels.route }}).",
				"A request handler of {{ $labels.instance }} panicked and was answered with an internal error; this is a bug."),
		}},
		{Name: "promgov-governance", Rules: []Rule{
			alert("PromgovTenantNearLimit", "warning",
				`max by (tenant, metric, limit) (promgov_cardinality_near_limit_ratio) > 0.9`, "15m",
				"promgov tenant {{ $labels.tenant }} is at {{ $value | humanizePercentage }} of its {{ $labels.limit }} limit.",
				"Tenant {{ $labels.tenant }}{{ with $labels.metric }} (metric {{ . }}){{ end }} uses over 90% of its {{ $labels.limit }} cardinality limit; new series will be refused."),
			alert("PromgovCardinalityLimitRefusing", "info",
				`sum by (tenant, limit) (rate(promgov_cardinality_refusals_total{mode="enforce"}[5m])) > 0`, "5m",
				"promgov refuses new series of tenant {{ $labels.tenant }} ({{ $labels.limit }} limit).",
				"Tenant {{ $labels.tenant }} sends new series over its {{ $labels.limit }} limit; they are refused (400 to the sender)."),
			alert("PromgovCardinalitySnapshotFailing", "warning",
				`increase(promgov_cardinality_snapshot_errors_total[30m]) > 0`, "",
				"promgov ingester {{ $labels.instance }} fails to write its cardinality snapshot.",
				"Cardinality snapshots of {{ $labels.instance }} fail; a restart would lose the cardinality state."),
			alert("PromgovUsageSourceFailing", "warning",
				`sum by (instance, kind) (rate(promgov_usage_source_loads_total{result="failure"}[15m])) > 0`, "15m",
				"promgov {{ $labels.instance }} cannot load its {{ $labels.kind }} usage source.",
				"Loads of the {{ $labels.kind }} usage source fail on {{ $labels.instance }} for 15 minutes; usage classification and the drop policy work from stale data (the drop policy blocks itself)."),
		}},
	}}
}

// RecordingRules returns the recording rules the dashboards read.
func RecordingRules() RuleFile {
	rec := func(name, expr string) Rule { return Rule{Record: name, Expr: expr} }
	return RuleFile{Groups: []Group{{Name: "promgov-recording", Rules: []Rule{
		rec("instance:promgov_distributor_received_samples:rate5m",
			`sum by (instance) (rate(promgov_distributor_received_samples_total[5m]))`),
		rec("code:promgov_distributor_requests:rate5m",
			`sum by (code) (rate(promgov_distributor_requests_total[5m]))`),
		rec("protocol:promgov_distributor_request_duration_seconds:p99_5m",
			`histogram_quantile(0.99, sum by (le, protocol) (rate(promgov_distributor_request_duration_seconds_bucket[5m])))`),
		rec("instance:promgov_forward_sent_samples:rate5m",
			`sum by (instance) (rate(promgov_forward_sent_samples_total[5m]))`),
		rec("reason:promgov_forward_dropped_samples:rate5m",
			`sum by (reason) (rate(promgov_forward_dropped_samples_total[5m]))`),
		rec("tenant_limit:promgov_cardinality_refusals:rate5m",
			`sum by (tenant, limit, mode) (rate(promgov_cardinality_refusals_total[5m]))`),
		rec("rule_action:promgov_rule_series:rate5m",
			`sum by (rule, action, mode) (rate(promgov_rule_series_total[5m]))`),
	}}}}
}
