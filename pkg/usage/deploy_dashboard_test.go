package usage

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeployDashboard: the dashboard `make run` gives the distributor as a
// usage source (deploy/grafana) loads without parse errors and reads the
// metrics it was written to read, collapsed row and template variable
// included.
func TestDeployDashboard(t *testing.T) {
	res, err := (&DashboardFiles{Path: "../../deploy/grafana"}).Load(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.ParseErrors, res.SampleErrors)
	require.Equal(t, 1, res.Items)
	var names []string
	for _, c := range res.Consumers {
		for _, n := range c.Refs.Names() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	require.Equal(t, []string{
		"promgov_cardinality_refusals_total",
		"promgov_distributor_received_samples_total",
		"promgov_distributor_requests_total",
		"promgov_forward_retries_total",
		"promgov_forward_sent_samples_total",
		"promgov_rule_series_total",
		"promgov_usage_metrics",
		"promgov_wal_oldest_uncommitted_age_seconds",
		"promgov_wal_segments",
	}, names)
}
