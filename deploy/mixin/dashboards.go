package mixin

// Panel is one dashboard panel: a time series (or stat) of its queries.
type Panel struct {
	Title string
	// Type is the Grafana panel type: "timeseries" (default) or "stat".
	Type string
	// Unit is Grafana's unit id ("short" when empty).
	Unit    string
	Targets []Target
}

// Target is one query of a panel.
type Target struct {
	Expr   string
	Legend string
}

// Row is a titled row of panels.
type Row struct {
	Title  string
	Panels []Panel
}

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	// File is the file name under dashboards/.
	File  string
	UID   string
	Title string
	Rows  []Row
}

func ts(title, unit string, targets ...Target) Panel {
	return Panel{Title: title, Type: "timeseries", Unit: unit, Targets: targets}
}

func stat(title, unit string, targets ...Target) Panel {
	return Panel{Title: title, Type: "stat", Unit: unit, Targets: targets}
}

func q(expr, legend string) Target { return Target{Expr: expr, Legend: legend} }

// sel is the instance selector every dashboard query carries.
const sel = `instance=~"$instance"`

// Dashboards returns the mixin's dashboards.
func Dashboards() []Dashboard {
	return []Dashboard{
		{File: "promgov-overview.json", UID: "promgov-mixin-overview", Title: "promgov / Overview", Rows: []Row{
			{Title: "Cluster", Panels: []Panel{
				stat("ACTIVE ingesters", "short", q(`max(promgov_ring_active_ingesters{`+sel+`})`, "")),
				stat("Members", "short", q(`max by (role) (sum by (instance, role) (promgov_ring_members{`+sel+`}))`, "{{role}}")),
				stat("Config reload OK", "short", q(`min(promgov_config_last_reload_successful{`+sel+`})`, "")),
				stat("Oldest unsent WAL data", "s", q(`max(promgov_wal_oldest_uncommitted_age_seconds{`+sel+`})`, "")),
			}},
			{Title: "Traffic", Panels: []Panel{
				ts("Samples received", "short", q(`sum(instance:promgov_distributor_received_samples:rate5m{`+sel+`})`, "received")),
				ts("Samples sent to the backend", "short", q(`sum(instance:promgov_forward_sent_samples:rate5m{`+sel+`})`, "sent")),
				ts("Refused and dropped by reason", "short",
					q(`sum by (limit) (rate(promgov_cardinality_refusals_total{`+sel+`, mode="enforce"}[$__rate_interval]))`, "refused: {{limit}}"),
					q(`sum by (reason) (rate(promgov_forward_dropped_samples_total{`+sel+`}[$__rate_interval]))`, "dropped: {{reason}}"),
					q(`sum(rate(promgov_distributor_invalid_series_total{`+sel+`}[$__rate_interval]))`, "invalid"),
					q(`sum(rate(promgov_distributor_usage_dropped_series_total{`+sel+`}[$__rate_interval]))`, "unused (drop policy)")),
				ts("Forward errors", "short", q(`sum by (instance) (rate(promgov_forward_retries_total{`+sel+`}[$__rate_interval]))`, "retries {{instance}}")),
			}},
		}},
		{File: "promgov-write-path.json", UID: "promgov-mixin-write-path", Title: "promgov / Write path", Rows: []Row{
			{Title: "Distributor", Panels: []Panel{
				ts("Requests by code", "reqps", q(`sum by (code) (rate(promgov_distributor_requests_total{`+sel+`}[$__rate_interval]))`, "{{code}}")),
				ts("Request latency p99", "s", q(`histogram_quantile(0.99, sum by (le, protocol) (rate(promgov_distributor_request_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "{{protocol}}")),
				ts("Push to ingesters latency p99", "s", q(`histogram_quantile(0.99, sum by (le, code) (rate(promgov_distributor_ingester_push_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "{{code}}")),
				ts("In-flight requests", "short", q(`sum by (instance) (promgov_distributor_inflight_requests{`+sel+`})`, "{{instance}}")),
				ts("Invalid and unsorted series", "short",
					q(`sum(rate(promgov_distributor_invalid_series_total{`+sel+`}[$__rate_interval]))`, "invalid"),
					q(`sum by (sender) (rate(promgov_distributor_unsorted_series_total{`+sel+`}[$__rate_interval]))`, "unsorted {{sender}}")),
			}},
			{Title: "Ingester", Panels: []Panel{
				ts("Push requests by code", "reqps", q(`sum by (code) (rate(promgov_ingester_push_requests_total{`+sel+`}[$__rate_interval]))`, "{{code}}")),
				ts("Received by kind", "short", q(`sum by (kind) (rate(promgov_ingester_received_total{`+sel+`}[$__rate_interval]))`, "{{kind}}")),
				ts("Request panics", "short", q(`sum by (edge, route) (rate(promgov_request_panics_total{`+sel+`}[$__rate_interval]))`, "{{edge}} {{route}}")),
			}},
		}},
		{File: "promgov-wal-forwarding.json", UID: "promgov-mixin-wal-forwarding", Title: "promgov / WAL and forwarding", Rows: []Row{
			{Title: "WAL", Panels: []Panel{
				ts("WAL size", "bytes", q(`sum by (instance) (promgov_wal_size_bytes{`+sel+`})`, "{{instance}}")),
				ts("Oldest unsent age", "s", q(`max by (instance) (promgov_wal_oldest_uncommitted_age_seconds{`+sel+`})`, "{{instance}}")),
				ts("Append rate", "Bps", q(`sum by (instance) (rate(promgov_wal_appended_bytes_total{`+sel+`}[$__rate_interval]))`, "{{instance}}")),
				ts("fsync p99", "s", q(`histogram_quantile(0.99, sum by (le, instance) (rate(promgov_wal_fsync_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "{{instance}}")),
				ts("Failures and corruption", "short",
					q(`sum by (reason) (rate(promgov_wal_append_failures_total{`+sel+`}[$__rate_interval]))`, "append {{reason}}"),
					q(`sum(rate(promgov_wal_fsync_failures_total{`+sel+`}[$__rate_interval]))`, "fsync"),
					q(`sum(rate(promgov_wal_corrupt_records_total{`+sel+`}[$__rate_interval]))`, "corrupt records"),
					q(`sum(rate(promgov_wal_overflow_dropped_segments_total{`+sel+`}[$__rate_interval]))`, "overflow dropped segments")),
			}},
			{Title: "Forwarding", Panels: []Panel{
				ts("Sent by kind", "short",
					q(`sum(rate(promgov_forward_sent_samples_total{`+sel+`}[$__rate_interval]))`, "samples"),
					q(`sum(rate(promgov_forward_sent_histograms_total{`+sel+`}[$__rate_interval]))`, "histograms"),
					q(`sum(rate(promgov_forward_sent_exemplars_total{`+sel+`}[$__rate_interval]))`, "exemplars")),
				ts("Dropped by reason", "short", q(`sum(reason:promgov_forward_dropped_samples:rate5m)`, "total"),
					q(`sum by (reason) (rate(promgov_forward_dropped_samples_total{`+sel+`}[$__rate_interval]))`, "{{reason}}")),
				ts("Backend request latency p99", "s", q(`histogram_quantile(0.99, sum by (le, status) (rate(promgov_forward_request_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "{{status}}")),
				ts("Shards", "short",
					q(`sum by (instance) (promgov_forward_shards{`+sel+`})`, "{{instance}}"),
					q(`sum by (instance) (promgov_forward_shards_desired{`+sel+`})`, "desired {{instance}}")),
				ts("Pending and backoff", "short",
					q(`sum by (instance) (promgov_forward_pending_samples{`+sel+`})`, "pending {{instance}}"),
					q(`max by (instance) (promgov_forward_backoff_seconds{`+sel+`})`, "backoff s {{instance}}")),
				ts("Retries", "short", q(`sum by (instance) (rate(promgov_forward_retries_total{`+sel+`}[$__rate_interval]))`, "{{instance}}")),
			}},
		}},
		{File: "promgov-cardinality.json", UID: "promgov-mixin-cardinality", Title: "promgov / Cardinality and governance", Rows: []Row{
			{Title: "Cardinality", Panels: []Panel{
				ts("Tracked metrics and tenants", "short",
					q(`sum(promgov_cardinality_tracked_metrics{`+sel+`})`, "metrics"),
					q(`max(promgov_cardinality_tracked_tenants{`+sel+`})`, "tenants")),
				ts("Refusals by tenant and limit", "short", q(`sum by (tenant, limit, mode) (tenant_limit:promgov_cardinality_refusals:rate5m)`, "{{tenant}} {{limit}} {{mode}}")),
				ts("Near a limit (top 10)", "percentunit", q(`topk(10, max by (tenant, metric, limit) (promgov_cardinality_near_limit_ratio{`+sel+`}))`, "{{tenant}} {{metric}} {{limit}}")),
				ts("Untracked (memory caps)", "short", q(`sum by (kind) (rate(promgov_cardinality_untracked_total{`+sel+`}[$__rate_interval]))`, "{{kind}}")),
			}},
			{Title: "Rules", Panels: []Panel{
				ts("Series acted on by rule", "short", q(`topk(10, sum by (rule, action, mode) (rule_action:promgov_rule_series:rate5m))`, "{{rule}} {{action}} {{mode}}")),
				stat("Active rules", "short", q(`max(promgov_rules_active{`+sel+`})`, "")),
			}},
			{Title: "Usage", Panels: []Panel{
				ts("Metrics by usage state", "short", q(`max by (state) (promgov_usage_metrics{`+sel+`})`, "{{state}}")),
				ts("Usage source loads", "short", q(`sum by (kind, result) (rate(promgov_usage_source_loads_total{`+sel+`}[$__rate_interval]))`, "{{kind}} {{result}}")),
				ts("Drop policy", "short",
					q(`max(promgov_usage_drop_candidates{`+sel+`})`, "candidates"),
					q(`sum by (mode) (rate(promgov_rule_series_total{rule="usage.drop_unused",`+sel+`}[$__rate_interval]))`, "series {{mode}}")),
			}},
		}},
		{File: "promgov-cluster.json", UID: "promgov-mixin-cluster", Title: "promgov / Cluster", Rows: []Row{
			{Title: "Ring", Panels: []Panel{
				ts("Members by role and state", "short", q(`max by (role, state) (promgov_ring_members{`+sel+`})`, "{{role}} {{state}}")),
				ts("Owned partitions", "short", q(`max by (instance) (promgov_ring_owned_partitions{`+sel+`})`, "{{instance}}")),
				ts("Placement rebuilds", "short", q(`sum by (instance) (rate(promgov_ring_placement_rebuilds_total{`+sel+`}[$__rate_interval]))`, "{{instance}}")),
				ts("Gossip health score", "short", q(`max by (instance) (promgov_ring_gossip_health_score{`+sel+`})`, "{{instance}}")),
			}},
			{Title: "Cluster RPCs", Panels: []Panel{
				ts("Analytics fan-out calls", "short", q(`sum by (result) (rate(promgov_cluster_query_calls_total{`+sel+`}[$__rate_interval]))`, "{{result}}")),
				ts("Sketch pulls", "short", q(`sum by (result) (rate(promgov_cluster_sketch_pulls_total{`+sel+`}[$__rate_interval]))`, "{{result}}")),
				ts("Handoff pulls", "short", q(`sum by (result) (rate(promgov_cluster_handoff_pulls_total{`+sel+`}[$__rate_interval]))`, "{{result}}")),
			}},
		}},
	}
}
