package integration

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadgenReport is the part of loadgen's JSON report the tests read.
type loadgenReport struct {
	SentSamples     int64            `json:"sent_samples"`
	AcceptedSamples int64            `json:"accepted_samples"`
	WrittenSamples  int64            `json:"written_samples"`
	RequestsFailed  int64            `json:"requests_failed"`
	Retries         int64            `json:"retries"`
	StatusCounts    map[string]int64 `json:"status_counts"`
}

// TestScaleUpAndDownUnderLoad pushes a steady RW 2.0 load through the
// cluster while an ingester joins and another leaves gracefully (SIGTERM),
// and finds every acknowledged sample in the backend, exactly.
func TestScaleUpAndDownUnderLoad(t *testing.T) {
	c := newCluster(t, 2, 2)

	var out bytes.Buffer
	lg := startProcessStdout(t, "loadgen", &out, filepath.Join(binDir, "loadgen"),
		"-url="+c.writeURL(), "-protocol=2",
		"-metrics=40", "-series-per-metric=10", "-series-per-request=100",
		"-rate=4000", "-duration=20s", "-concurrency=2",
		"-retry=true", "-max-retries=0", "-output=json", "-report-interval=0",
	)
	// Every stored loadgen sample, counted from the raw samples.
	total := func(ct T) int { return samplesIn(c.backend.rawSamples(ct, `{__name__=~"loadgen_.+"}`)) }
	progress := func(min int) func(*assert.CollectT) bool {
		return func(ct *assert.CollectT) bool { return total(ct) >= min }
	}
	eventually(t, progress(4000), 30*time.Second, 200*time.Millisecond, "load never reached the backend")

	joined := c.addIngester()
	c.waitActive(3)
	t.Logf("%s joined", joined.name)
	eventually(t, progress(20000), 30*time.Second, 200*time.Millisecond, "load stalled after the join")

	leaving := c.ingesters[0]
	leaving.proc.Stop(t) // SIGTERM: LEAVING, drain, flush, leave
	c.waitActive(2)
	t.Logf("%s left", leaving.name)

	require.NoError(t, lg.Wait(60*time.Second), "loadgen")
	var rep loadgenReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "loadgen report: %s", out.String())
	t.Logf("loadgen: %+v", rep)
	require.Zero(t, rep.RequestsFailed, "requests given up on")
	require.Positive(t, rep.AcceptedSamples)
	require.Equal(t, rep.SentSamples, rep.AcceptedSamples)

	waitAllStored(t, rep, total)
}
