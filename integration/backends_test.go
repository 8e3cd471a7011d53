package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// Backends other than the Prometheus 3.16 of the harness, for the tests of
// how the forwarder speaks to what exists in the field. Each is found like
// Prometheus: from an environment variable set by `make test` (or a Debian
// package path), skipped with the reason when absent, or failed when
// PROMGOV_REQUIRE_INTEGRATION is set.

// debianPrometheus is Prometheus 2.42 from the Debian package: a remote
// write 1.0 receiver that does not look at Content-Type, so it decodes a
// 2.0 body as an empty 1.0 request and answers 204 without Written headers.
const debianPrometheus = "/usr/bin/prometheus"

// requirePeer returns the binary a test needs, or skips (fails under
// PROMGOV_REQUIRE_INTEGRATION) with a message naming what is missing.
func requirePeer(t *testing.T, path, missing string) string {
	t.Helper()
	requireIntegration(t) // the promgov binaries are built only then
	reason := ""
	if path == "" {
		reason = missing
	} else if _, err := os.Stat(path); err != nil {
		reason = fmt.Sprintf("%s: %v", path, err)
	}
	if reason != "" {
		if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("integration test cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	return path
}

// distinctSamples counts the distinct (series, timestamp) pairs stored for
// the series matching selector. Recently written data is flushed first so
// that it is searchable; duplicates from at-least-once re-sends count once.
func (v *backend) distinctSamples(t T, selector string) int {
	t.Helper()
	resp, err := http.Get("http://" + v.addr + "/internal/force_flush")
	require.NoError(t, err)
	_ = resp.Body.Close()
	resp, err = http.Get("http://" + v.addr + "/api/v1/export?" + url.Values{"match[]": {selector}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	seen := map[string]map[int64]struct{}{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		key := renderLabels(line.Metric)
		if seen[key] == nil {
			seen[key] = map[int64]struct{}{}
		}
		for _, ts := range line.Timestamps {
			seen[key][ts] = struct{}{}
		}
	}
	require.NoError(t, sc.Err())
	n := 0
	for _, s := range seen {
		n += len(s)
	}
	return n
}
