package ui

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/promgov/promgov/internal/fanout"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/web"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// PathNodeStatus is the node status API path: this node's health as its
// own metrics say (GET, Prometheus envelope).
const PathNodeStatus = web.APIPrefix + "/status/node"

// NodeStatus is one node's health summary, read from its own metrics.
// Counters are totals since the start; the UI turns them into rates.
type NodeStatus struct {
	Node string `json:"node"`
	Role string `json:"role"`
	// Error is set when the node could not be asked (cluster view only).
	Error string `json:"error,omitempty"`
	// WALBytes and WALSegments are the WAL on disk.
	WALBytes    float64 `json:"wal_bytes"`
	WALSegments float64 `json:"wal_segments"`
	// OldestUnsentSeconds is the age of the oldest WAL record the backend
	// has not acknowledged.
	OldestUnsentSeconds float64 `json:"oldest_unsent_seconds"`
	// WALCorruptRecords counts corrupt WAL regions skipped.
	WALCorruptRecords float64 `json:"wal_corrupt_records"`
	// ForwardBackoffSeconds is above 0 while the backend fails.
	ForwardBackoffSeconds float64 `json:"forward_backoff_seconds"`
	// ForwardPending is what waits in memory to be sent.
	ForwardPending float64 `json:"forward_pending"`
	// ForwardSent, ForwardRetries and ForwardDropped are totals.
	ForwardSent    float64 `json:"forward_sent"`
	ForwardRetries float64 `json:"forward_retries"`
	ForwardDropped float64 `json:"forward_dropped"`
	// ReceivedSamples is samples accepted (distributor: received and
	// pushed; ingester: accepted from distributors).
	ReceivedSamples float64 `json:"received_samples"`
	// Refused counts by reason what was refused or dropped: cardinality
	// limits (ingester), invalid series, rule drops and the usage drop
	// policy (distributor), forward drops (ingester).
	Refused map[string]float64 `json:"refused"`
	// ConfigReloadOK is the last reload's success (1) or failure (0).
	ConfigReloadOK float64 `json:"config_reload_ok"`
	// TrackedMetrics is the (tenant, metric) pairs tracked (ingester).
	TrackedMetrics float64 `json:"tracked_metrics"`
}

// ReadNodeStatus summarises g's metrics as a NodeStatus.
func ReadNodeStatus(g prometheus.Gatherer, node, role string) (NodeStatus, error) {
	mfs, err := g.Gather()
	if err != nil {
		return NodeStatus{}, fmt.Errorf("gather metrics: %w", err)
	}
	st := NodeStatus{Node: node, Role: role, Refused: map[string]float64{}}
	for _, mf := range mfs {
		sum := func() float64 { return sumFamily(mf, nil) }
		switch mf.GetName() {
		case "promgov_wal_size_bytes":
			st.WALBytes = sum()
		case "promgov_wal_segments":
			st.WALSegments = sum()
		case "promgov_wal_oldest_uncommitted_age_seconds":
			st.OldestUnsentSeconds = sum()
		case "promgov_wal_corrupt_records_total":
			st.WALCorruptRecords = sum()
		case "promgov_forward_backoff_seconds":
			st.ForwardBackoffSeconds = sum()
		case "promgov_forward_pending_samples":
			st.ForwardPending = sum()
		case "promgov_forward_sent_samples_total", "promgov_forward_sent_histograms_total":
			st.ForwardSent += sum()
		case "promgov_forward_retries_total":
			st.ForwardRetries = sum()
		case "promgov_forward_dropped_samples_total":
			st.ForwardDropped = sum()
			addBy(st.Refused, mf, "reason", "backend ")
		case "promgov_distributor_received_samples_total", "promgov_ingester_received_total":
			st.ReceivedSamples += sum()
		case "promgov_cardinality_refusals_total":
			addBy(st.Refused, mf, "limit", "")
		case "promgov_distributor_invalid_series_total":
			st.Refused["invalid"] += sum()
		case "promgov_distributor_usage_dropped_series_total":
			st.Refused["unused (drop policy)"] += sum()
		case "promgov_rule_series_total":
			st.Refused["rule drop"] += sumFamily(mf, map[string]string{"action": "drop", "mode": "enforce"})
		case "promgov_config_last_reload_successful":
			st.ConfigReloadOK = sum()
		case "promgov_cardinality_tracked_metrics":
			st.TrackedMetrics = sum()
		}
	}
	return st, nil
}

// RuleCounters returns promgov_rule_series_total from g by rule, then
// "action/mode".
func RuleCounters(g prometheus.Gatherer) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "promgov_rule_series_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labelMap(m)
			if out[l["rule"]] == nil {
				out[l["rule"]] = map[string]float64{}
			}
			out[l["rule"]][l["action"]+"/"+l["mode"]] += value(m)
		}
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sumFamily sums the family's series whose labels include match.
func sumFamily(mf *dto.MetricFamily, match map[string]string) float64 {
	s := 0.0
	for _, m := range mf.GetMetric() {
		l := labelMap(m)
		ok := true
		for k, v := range match {
			if l[k] != v {
				ok = false
			}
		}
		if ok {
			s += value(m)
		}
	}
	return s
}

// addBy adds the family's series to out by the value of label, prefixed.
func addBy(out map[string]float64, mf *dto.MetricFamily, label, prefix string) {
	for _, m := range mf.GetMetric() {
		if v := value(m); v > 0 {
			out[prefix+labelMap(m)[label]] += v
		}
	}
}

// NodeStatusHandler serves GET PathNodeStatus from g.
func NodeStatusHandler(g prometheus.Gatherer, node, role string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st, err := ReadNodeStatus(g, node, role)
		if err != nil {
			web.WriteError(w, http.StatusInternalServerError, "internal", err)
			return
		}
		web.WriteJSON(w, st)
	})
}

// NodeSource answers the health of the cluster's ingesters. Safe for
// concurrent use.
type NodeSource interface {
	Nodes(ctx context.Context) []NodeStatus
}

// Members lists the cluster's members; *ring.Ring is one. Safe for
// concurrent use.
type Members interface {
	Members() []ring.Member
}

// Clients hands out cluster-service clients of ingesters by address; the
// distributor's connections are one. Safe for concurrent use.
type Clients interface {
	Client(addr string) (ingesterv1.ClusterServiceClient, error)
}

// ClusterNodes asks every ingester for its NodeStatus (the GetNodeStatus
// cluster RPC).
type ClusterNodes struct {
	Members Members
	Clients Clients
	// Timeout bounds each ingester's answer.
	Timeout time.Duration
}

// Nodes implements NodeSource. An ingester that does not answer is listed
// with its error.
func (c *ClusterNodes) Nodes(ctx context.Context) []NodeStatus {
	var ings []ring.Member
	for _, m := range c.Members.Members() {
		if m.Role == ring.RoleIngester && m.GRPCAddress != "" {
			ings = append(ings, m)
		}
	}
	out := make([]NodeStatus, len(ings))
	fanout.Each(ings, func(i int, m ring.Member) error {
		st, err := c.ask(ctx, m)
		if err != nil {
			st = NodeStatus{Node: m.Name, Role: string(m.Role), Error: err.Error()}
		}
		out[i] = st
		return nil
	})
	return out
}

func (c *ClusterNodes) ask(ctx context.Context, m ring.Member) (NodeStatus, error) {
	cl, err := c.Clients.Client(m.GRPCAddress)
	if err != nil {
		return NodeStatus{}, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cl.GetNodeStatus(ctx, &ingesterv1.GetNodeStatusRequest{})
	if err != nil {
		return NodeStatus{}, err
	}
	return fromProto(resp.GetStatus()), nil
}

// StatusSource reads a node's NodeStatus from its metrics, for the
// ingester's GetNodeStatus RPC. Safe for concurrent use.
type StatusSource struct {
	Gatherer prometheus.Gatherer
	Node     string
	Role     string
}

// NodeStatus reads the status and puts it in the cluster API's form.
func (s StatusSource) NodeStatus() (*ingesterv1.NodeStatus, error) {
	st, err := ReadNodeStatus(s.Gatherer, s.Node, s.Role)
	if err != nil {
		return nil, err
	}
	return &ingesterv1.NodeStatus{
		Node: st.Node, Role: st.Role,
		WalBytes: st.WALBytes, WalSegments: st.WALSegments, OldestUnsentSeconds: st.OldestUnsentSeconds,
		WalCorruptRecords: st.WALCorruptRecords, ForwardBackoffSeconds: st.ForwardBackoffSeconds,
		ForwardPending: st.ForwardPending, ForwardSent: st.ForwardSent, ForwardRetries: st.ForwardRetries,
		ForwardDropped: st.ForwardDropped, ReceivedSamples: st.ReceivedSamples, Refused: st.Refused,
		ConfigReloadOk: st.ConfigReloadOK, TrackedMetrics: st.TrackedMetrics,
	}, nil
}

func fromProto(p *ingesterv1.NodeStatus) NodeStatus {
	refused := p.GetRefused()
	if refused == nil {
		refused = map[string]float64{}
	}
	return NodeStatus{
		Node: p.GetNode(), Role: p.GetRole(),
		WALBytes: p.GetWalBytes(), WALSegments: p.GetWalSegments(), OldestUnsentSeconds: p.GetOldestUnsentSeconds(),
		WALCorruptRecords: p.GetWalCorruptRecords(), ForwardBackoffSeconds: p.GetForwardBackoffSeconds(),
		ForwardPending: p.GetForwardPending(), ForwardSent: p.GetForwardSent(), ForwardRetries: p.GetForwardRetries(),
		ForwardDropped: p.GetForwardDropped(), ReceivedSamples: p.GetReceivedSamples(), Refused: refused,
		ConfigReloadOK: p.GetConfigReloadOk(), TrackedMetrics: p.GetTrackedMetrics(),
	}
}
