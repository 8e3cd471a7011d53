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

// scraper is a real agent scraping a target and remote-writing what it
// scraped.
type scraper struct {
	name       string
	metricsURL string // the agent's own /metrics
	// failures names the agent's counters of data it could not deliver.
	failures []failureCounter
	// sent is a counter of what it delivered, which must be positive.
	sent failureCounter
}

// failureCounter is a metric name and label matchers for
// metricSumMatching; lazy counters appear only once they count something.
type failureCounter struct {
	name     string
	matchers []string
	lazy     bool
}

// requireNoFailures checks that the agent delivered data and that its
// failure counters are zero; a counter that is always exported must be
// there, so a renamed counter cannot pass unnoticed.
func (s *scraper) requireNoFailures(t *testing.T) {
	t.Helper()
	sent, _ := metricSumMatching(s.metricsURL, s.sent.name, s.sent.matchers...)
	require.Positive(t, sent, "%s sent nothing (%s)", s.name, s.sent.name)
	for _, f := range s.failures {
		sum, found := metricSumMatching(s.metricsURL, f.name, f.matchers...)
		if !f.lazy {
			require.Positive(t, found, "%s exports no %s", s.name, f.name)
		}
		require.Zero(t, sum, "%s: %s %v", s.name, f.name, f.matchers)
	}
}

// scrapeConfig scrapes target as job every second, in the scrape
// configuration both Prometheus and vmagent read.
func scrapeConfig(job, target string) string {
	return fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: %q
    static_configs: [{targets: [%q]}]
`, job, target)
}

// startPromAgent starts Prometheus 3.16 in agent mode scraping target every
// second as job and remote writing to writeURL with the given protobuf
// message (protocol).
func startPromAgent(t *testing.T, writeURL, job, target, message string) *scraper {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := scrapeConfig(job, target) + fmt.Sprintf(`remote_write:
  - url: %s
    protobuf_message: %s
    queue_config: {batch_send_deadline: 200ms}
    metadata_config: {send: true, send_interval: 1s}
`, writeURL, message)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "agent.yml"), []byte(cfg), 0o644))
	p := startProcess(t, "prometheus-agent", prometheus, "--agent",
		"--enable-feature=metadata-wal-records",
		"--config.file="+filepath.Join(dir, "agent.yml"),
		"--storage.agent.path="+filepath.Join(dir, "wal"),
		"--web.listen-address="+addr,
	)
	waitReady(t, p, "http://"+addr+"/-/ready")
	return &scraper{
		name:       "prometheus agent (" + message + ")",
		metricsURL: "http://" + addr + "/metrics",
		sent:       failureCounter{name: "prometheus_remote_storage_samples_total"},
		failures: []failureCounter{
			{name: "prometheus_remote_storage_samples_failed_total"},
			{name: "prometheus_remote_storage_histograms_failed_total"},
			{name: "prometheus_remote_storage_exemplars_failed_total"},
			// Metadata travels apart only in RW 1.0; drops are counted by reason.
			{name: "prometheus_remote_storage_metadata_failed_total", lazy: true},
			{name: "prometheus_remote_storage_samples_dropped_total", lazy: true},
			{name: "prometheus_remote_storage_histograms_dropped_total", lazy: true},
		},
	}
}

// startVMAgent starts vmagent scraping target every second as job and
// remote writing to writeURL, with extra flags.
func startVMAgent(t *testing.T, writeURL, job, target string, flags ...string) *scraper {
	t.Helper()
	bin := peerBinary(t, "PROMGOV_VMAGENT", "", "run `make test`, which builds vmagent v1.151.0 and sets it")
	dir := t.TempDir()
	addr := freeAddr(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scrape.yml"), []byte(scrapeConfig(job, target)), 0o644))
	args := append([]string{
		"-promscrape.config=" + filepath.Join(dir, "scrape.yml"),
		"-remoteWrite.url=" + writeURL,
		"-remoteWrite.tmpDataPath=" + filepath.Join(dir, "queue"),
		"-httpListenAddr=" + addr,
	}, flags...)
	p := startProcess(t, "vmagent", bin, args...)
	waitReady(t, p, "http://"+addr+"/health")
	return &scraper{
		name:       fmt.Sprintf("vmagent %v", flags),
		metricsURL: "http://" + addr + "/metrics",
		sent:       failureCounter{name: "vmagent_remotewrite_blocks_sent_total"},
		failures: []failureCounter{
			{name: "vmagent_remotewrite_packets_dropped_total"},
			{name: "vmagent_remotewrite_samples_dropped_total"},
			{name: "vmagent_remotewrite_errors_total"},
			{name: "vmagent_remotewrite_requests_total", matchers: []string{`status_code="400"`}, lazy: true},
			{name: "vmagent_remotewrite_requests_total", matchers: []string{`status_code="5`}, lazy: true},
		},
	}
}

// TestRealSendersNodeExporter puts real agents scraping a real node
// exporter in front of a cluster of two ingesters, per sender and protocol,
// and finds every series the exporter exposes in the backend, with no
// failure counted by the sender. vmagent appends the target labels after
// the scraped ones, so its series arrive unsorted and are sorted at the
// edge (issue 10).
func TestRealSendersNodeExporter(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	exporter := startNodeExporter(t)
	for _, tc := range []struct {
		name     string
		start    func(t *testing.T, writeURL, job string) *scraper
		victoria bool // VictoriaMetrics backend, forwarded to in RW 1.0
		sorted   bool // the sender's series arrive unsorted
	}{
		{
			name:   "vmagent",
			start:  func(t *testing.T, u, job string) *scraper { return startVMAgent(t, u, job, exporter) },
			sorted: true,
		},
		{
			name: "vmagent-forcePromProto",
			start: func(t *testing.T, u, job string) *scraper {
				return startVMAgent(t, u, job, exporter, "-remoteWrite.forcePromProto")
			},
			victoria: true,
			sorted:   true,
		},
		{
			name: "prometheus-agent-rw1",
			start: func(t *testing.T, u, job string) *scraper {
				return startPromAgent(t, u, job, exporter, "prometheus.WriteRequest")
			},
		},
		{
			name: "prometheus-agent-rw2",
			start: func(t *testing.T, u, job string) *scraper {
				return startPromAgent(t, u, job, exporter, "io.prometheus.write.v2.Request")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, protocol := (*backend)(nil), 2
			if tc.victoria {
				be, protocol = startVictoriaMetrics(t), 1
			} else {
				be = startBackend(t)
			}
			c := newClusterOn(t, 2, protocol, be)
			job := "node-" + tc.name
			s := tc.start(t, c.writeURL(), job)

			selector := fmt.Sprintf(`{job=%q}`, job)
			eventually(t, func(ct *assert.CollectT) bool { return len(be.storedSeries(ct, selector)) > 0 },
				60*time.Second, 500*time.Millisecond, "nothing from %s reached the backend", s.name)
			want := exposedSeries(t, "http://"+exporter+"/metrics", map[string]string{"job": job, "instance": exporter})
			var got map[string]bool
			eventually(t, func(ct *assert.CollectT) bool {
				got = be.storedSeries(ct, selector)
				return len(missing(want, got, 1)) == 0
			}, 60*time.Second, time.Second, "series the exporter exposes that never arrived: %v",
				lazy(func() any { return missing(want, got, 20) }))
			arrived := 0
			for s := range want {
				if got[s] {
					arrived++
				}
			}
			sortedSeries := metricSum(c.distributor.url("/metrics"), "promgov_distributor_unsorted_series_total")
			t.Logf("%s -> promgov (2 ingesters, backend protocol %d) -> %s: exporter exposes %d series, %d arrived; %d series stored for the job incl. the scraper's own; %v series sorted at the edge",
				s.name, protocol, be.proc.name, len(want), arrived, len(got), sortedSeries)
			require.Equal(t, len(want), arrived)

			s.requireNoFailures(t)
			require.Zero(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_invalid_series_total"))
			if tc.sorted {
				require.Positive(t, sortedSeries, "the sender's unsorted series were not counted")
			}
		})
	}
}
