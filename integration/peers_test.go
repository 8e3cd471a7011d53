package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/stretchr/testify/require"
)

// nodeExporterBin is Debian's prometheus-node-exporter package.
const nodeExporterBin = "/usr/bin/prometheus-node-exporter"

// peerBinary returns the binary named by env (or path when env is ""),
// skipping the test when it is missing unless PROMGOV_REQUIRE_INTEGRATION
// is set, which turns that into a failure.
func peerBinary(t *testing.T, env, path, how string) string {
	t.Helper()
	requireIntegration(t)
	if env != "" {
		path = os.Getenv(env)
	}
	reason := ""
	switch {
	case path == "":
		reason = fmt.Sprintf("%s is not set: %s", env, how)
	default:
		if _, err := os.Stat(path); err != nil {
			reason = fmt.Sprintf("%s: %v: %s", path, err, how)
		}
	}
	if reason == "" {
		return path
	}
	if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
		t.Fatal(reason)
	}
	t.Skip(reason)
	return ""
}

// startVictoriaMetrics starts VictoriaMetrics single-node on a free port. Its
// remote write endpoint speaks 1.0 only and answers a 2.0 request 204
// without any X-Prometheus-Remote-Write-*-Written header (having stored
// nothing). It
// serves remote write at /api/v1/write and the Prometheus query API, so the
// backend helpers work on it.
func startVictoriaMetrics(t *testing.T) *backend {
	t.Helper()
	bin := peerBinary(t, "PROMGOV_VICTORIAMETRICS", "", "run `make test`, which builds VictoriaMetrics v1.151.0 and sets it")
	addr := freeAddr(t)
	p := startProcess(t, "victoria-metrics", bin,
		"-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(t.TempDir(), "vm"),
		"-retentionPeriod=1d",
		// Make freshly written data queryable at once.
		"-search.disableCache",
		"-search.latencyOffset=0s",
		"-inmemoryDataFlushInterval=1s",
	)
	waitReady(t, p, "http://"+addr+"/health")
	return &backend{proc: p, addr: addr}
}

// startNodeExporter starts Debian's node exporter on a free loopback port
// with a fixed set of collectors whose series do not come and go between
// scrapes, and returns its address.
func startNodeExporter(t *testing.T) string {
	t.Helper()
	bin := peerBinary(t, "", nodeExporterBin, "install Debian's prometheus-node-exporter")
	addr := freeAddr(t)
	args := []string{"--web.listen-address=" + addr, "--collector.disable-defaults"}
	for _, c := range []string{"cpu", "meminfo", "loadavg", "stat", "vmstat", "uname", "time", "netdev", "diskstats", "filesystem"} {
		args = append(args, "--collector."+c)
	}
	p := startProcess(t, "node-exporter", bin, args...)
	waitReady(t, p, "http://"+addr+"/metrics")
	return addr
}

// exposedSeries scrapes a /metrics endpoint in the text format and returns
// every series it exposes, with extra labels added (the target labels a
// scraper attaches), each rendered with seriesKey.
func exposedSeries(t T, metricsURL string, extra map[string]string) map[string]bool {
	t.Helper()
	code, body := rawGet(t, metricsURL)
	require.Equal(t, http.StatusOK, code)
	p := textparse.NewPromParser([]byte(body), labels.NewSymbolTable(), false)
	out := map[string]bool{}
	for {
		entry, err := p.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if entry != textparse.EntrySeries {
			continue
		}
		var ls labels.Labels
		p.Labels(&ls)
		m := ls.Map()
		for k, v := range extra {
			m[k] = v
		}
		out[seriesKey(m)] = true
	}
	return out
}

// seriesKey renders a series for comparing what a target exposes with what
// a backend stores: labels with an empty value are left out (a label with
// an empty value is no label; storage drops it) and le and quantile values
// are written in one float format (scrapers differ: Prometheus 3 stores
// quantile="0" as "0.0", vmagent as sent).
func seriesKey(m map[string]string) string {
	for k, v := range m {
		switch {
		case v == "":
			delete(m, k)
		case k == "le" || k == "quantile":
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	}
	return renderLabels(m)
}

// storedSeries asks a backend's series API for every series matching
// selector written in the last hour, rendered with seriesKey. The
// __type__ and __unit__ labels a Prometheus backend derives from metadata
// are left out, so the result compares with what a target exposes.
func (b *backend) storedSeries(t T, selector string) map[string]bool {
	t.Helper()
	var data []map[string]string
	now := time.Now()
	apiGet(t, "http://"+b.addr, "/api/v1/series", url.Values{
		"match[]": {selector},
		"start":   {strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)},
		"end":     {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)},
	}, &data)
	out := make(map[string]bool, len(data))
	for _, m := range data {
		delete(m, "__type__")
		delete(m, "__unit__")
		out[seriesKey(m)] = true
	}
	return out
}

// missing returns the members of want that got lacks, sorted, at most n.
func missing(want, got map[string]bool, n int) []string {
	var out []string
	for s := range want {
		if !got[s] {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	if len(out) > n {
		out = append(out[:n], fmt.Sprintf("… %d more", len(out)-n))
	}
	return out
}

// metricSumMatching sums the samples of metric name whose label set
// contains every one of the given `name="value"` matchers, and says how
// many it found; found is -1 when the scrape fails. (metricSum selects by
// the first labels only.)
func metricSumMatching(metricsURL, name string, matchers ...string) (sum float64, found int) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range matchers {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
			found++
		}
	}
	return sum, found
}
