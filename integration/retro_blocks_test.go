package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// TestRetrospectiveBlockRoute: the TSDB-block route for ranges older than
// Prometheus' out-of-order window, end to end.
//
//	Prometheus 3.16 (history, 3 h out-of-order window)
//	   │ remote read
//	job manager (mode openmetrics) ── GET /jobs/openmetrics/{id} ──▶ file
//	   promtool tsdb create-blocks-from openmetrics file blocks/
//	   blocks/ moved into a second Prometheus 3.16's data directory
//	   └── every sample under its new labels, by range queries
//
// An execute over a range older than the window is refused before any work
// and names the route.
func TestRetrospectiveBlockRoute(t *testing.T) {
	t.Parallel()
	promtool := os.Getenv("PROMGOV_PROMTOOL")
	if promtool == "" {
		var err error
		if promtool, err = exec.LookPath("promtool"); err != nil {
			requireIntegration(t)
			if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
				t.Fatalf("promtool not found (set PROMGOV_PROMTOOL or install Debian's prometheus package): %v", err)
			}
			t.Skip("promtool not found: install Debian's prometheus package or set PROMGOV_PROMTOOL")
		}
	}
	b, end, want := startRetroPrometheusWithHistory(t)
	m := startRetroManager(t, retro.KindPrometheus, b.base())
	mux := http.NewServeMux()
	m.Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()

	// Older than the 3 h window: refused, naming the route.
	_, err := m.Submit(context.Background(), retro.Spec{Candidate: retroCandidate, Selector: `{job="retro"}`,
		Start: end.Add(-5 * time.Hour), End: end, Mode: retro.ModeExecute})
	var bad *retro.BadRequestError
	require.ErrorAs(t, err, &bad)
	assert.ErrorContains(t, err, "out_of_order_time_window")
	assert.ErrorContains(t, err, "mode: openmetrics")

	j, err := m.Submit(context.Background(), retro.Spec{Candidate: retroCandidate, Selector: `{job="retro"}`,
		Start: end.Add(-150 * time.Minute), End: end.Add(time.Second), Mode: retro.ModeOpenMetrics})
	require.NoError(t, err)
	j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
	require.Equal(t, retro.StateSucceeded, j.State, "openmetrics: %s", j.Error)
	assert.EqualValues(t, 200*retroSamples, j.Progress.SamplesWritten)
	assert.Empty(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_total`), "an openmetrics job wrote to the backend")

	resp, err := http.Get(api.URL + retro.PathOpenMetrics + j.ID)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	dir := t.TempDir()
	file := filepath.Join(dir, "series.om")
	f, err := os.Create(file)
	require.NoError(t, err)
	_, err = io.Copy(f, resp.Body)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	data := filepath.Join(dir, "data")
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", file, data).CombinedOutput()
	require.NoError(t, err, "promtool: %s", out)
	t.Logf("promtool tsdb create-blocks-from openmetrics:\n%s", out)

	// A second Prometheus whose data directory holds the new blocks.
	addr := freeAddr(t)
	p := startProcess(t, "prometheus-blocks", prometheus, "--config.file="+writeEmptyConfig(t), "--storage.tsdb.path="+data,
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1d")
	waitReady(t, p, "http://"+addr+"/-/ready")
	got := storedSamples(t, &backend{proc: p, addr: addr}, retro.KindPrometheus, `http_requests_total`)
	require.Len(t, got, len(want))
	for k, v := range want {
		require.Equal(t, v, got[k], "series %s", k)
	}
}

func writeEmptyConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(p, []byte("global: {}\n"), 0o644))
	return p
}
