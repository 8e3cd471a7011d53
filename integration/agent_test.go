package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrometheusAgentSender puts a real sender in front of the cluster:
// Prometheus 3.16 in agent mode scrapes itself every second and remote
// writes through the distributor, once per protocol. The backend must end
// up with the agent's own series, scraped metadata included.
func TestPrometheusAgentSender(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2)
	for _, tc := range []struct{ protocol, message string }{
		{"rw2", "io.prometheus.write.v2.Request"},
		{"rw1", "prometheus.WriteRequest"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			cfg := fmt.Sprintf(`global: {scrape_interval: 1s, external_labels: {sender: %q}}
scrape_configs:
  - job_name: agent
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s
    protobuf_message: %s
    send_exemplars: true
    queue_config: {batch_send_deadline: 200ms}
    metadata_config: {send: true, send_interval: 1s}
`, tc.protocol, addr, c.writeURL(), tc.message)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "agent.yml"), []byte(cfg), 0o644))
			agent := startProcess(t, "agent-"+tc.protocol, prometheus, "--agent",
				// RW 2.0 senders take per-series metadata from WAL metadata records.
				"--enable-feature=metadata-wal-records",
				"--config.file="+filepath.Join(dir, "agent.yml"),
				"--storage.agent.path="+filepath.Join(dir, "wal"),
				"--web.listen-address="+addr,
			)
			waitReady(t, agent, "http://"+addr+"/-/ready")

			query := fmt.Sprintf(`count({job="agent", sender=%q})`, tc.protocol)
			eventually(t, func(ct *assert.CollectT) bool {
				return c.backend.count(ct, query) > 100
			}, 60*time.Second, 500*time.Millisecond, "the agent's series never reached the backend")
			// up may travel in another request of the agent (and from another
			// ingester) than the series counted above.
			eventually(t, func(ct *assert.CollectT) bool {
				return c.backend.count(ct, fmt.Sprintf(`count(up{job="agent", sender=%q} == 1)`, tc.protocol)) == 1
			}, 30*time.Second, 200*time.Millisecond, "the agent's up never reached the backend as 1")
			if tc.protocol != "rw2" {
				agent.Stop(t)
				return // 1.0 metadata travels apart from series; see TestRoundTrip
			}
			// Metadata arrived: the backend derives __type__ from it.
			require.Positive(t, c.backend.count(t,
				fmt.Sprintf(`count({__name__="prometheus_http_requests_total", __type__="counter", sender=%q})`, tc.protocol)),
				"series: %v", keys(c.backend.rawSamples(t, fmt.Sprintf(`{__name__=~"prometheus_http_requests_total|up", sender=%q}`, tc.protocol))))
			agent.Stop(t)
		})
	}
}
