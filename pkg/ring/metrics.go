package ring

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// ringMetrics are the ring's Prometheus metrics. Label values are bounded:
// role (2) x state (3), event (3), result (2).
type ringMetrics struct {
	members          *prometheus.GaugeVec
	events           *prometheus.CounterVec
	joins            *prometheus.CounterVec
	rebuilds         prometheus.Counter
	invalidMeta      prometheus.Counter
	activeIngesters  prometheus.Gauge
	ownedPartitions  prometheus.Gauge
	fingerprint      prometheus.Gauge
	lastChange       prometheus.Gauge
	truncated        prometheus.Gauge
	gossipHealthFunc prometheus.GaugeFunc
}

// newRingMetrics builds the metrics; health reads memberlist's health score.
func newRingMetrics(health func() float64) *ringMetrics {
	m := &ringMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_ring_members",
			Help: "Members this node sees, by role and advertised state.",
		}, []string{"role", "state"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ring_membership_events_total",
			Help: "Gossip membership events (join, leave, update) processed.",
		}, []string{"event"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ring_join_attempts_total",
			Help: "Attempts to join the cluster, by result (success, failure).",
		}, []string{"result"}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_ring_placement_rebuilds_total",
			Help: "Times the placement was recomputed because the set of ACTIVE ingesters changed.",
		}),
		invalidMeta: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_ring_invalid_meta_total",
			Help: "Gossip members ignored because their metadata could not be decoded.",
		}),
		activeIngesters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_ring_active_ingesters",
			Help: "ACTIVE ingesters owning partitions in the current placement.",
		}),
		ownedPartitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_ring_owned_partitions",
			Help: "Partitions this node owns in the current placement.",
		}),
		fingerprint: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_ring_placement_fingerprint",
			Help: "Fingerprint of the current placement (low 52 bits); equal on members that have converged.",
		}),
		lastChange: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_ring_placement_last_change_timestamp_seconds",
			Help: "Unix time of the last placement change.",
		}),
		truncated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_ring_ingesters_without_partitions",
			Help: "ACTIVE ingesters that own nothing because there are more ingesters than partitions.",
		}),
		gossipHealthFunc: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "promgov_ring_gossip_health_score",
			Help: "memberlist's health (awareness) score; 0 is healthy, higher means this node is slow to answer probes.",
		}, health),
	}
	for _, r := range []Role{RoleIngester, RoleDistributor} {
		for _, s := range []State{StateJoining, StateActive, StateLeaving} {
			m.members.WithLabelValues(string(r), string(s))
		}
	}
	for _, e := range []string{eventJoin, eventLeave, eventUpdate} {
		m.events.WithLabelValues(e)
	}
	m.joins.WithLabelValues("success")
	m.joins.WithLabelValues("failure")
	return m
}

// register registers every metric with reg; a nil reg registers nothing. On
// failure the metrics registered so far are unregistered again.
func (m *ringMetrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.members, m.events, m.joins, m.rebuilds, m.invalidMeta,
		m.activeIngesters, m.ownedPartitions, m.fingerprint, m.lastChange, m.truncated, m.gossipHealthFunc} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("register ring metrics: %w", err)
		}
		done = append(done, c)
	}
	return nil
}
