package integration

import (
	"bufio"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/deploy/mixin"
)

// exportedNames scrapes url (a /metrics endpoint) and returns the metric
// names it exports: the names of its # TYPE lines and of its samples
// (a histogram's _bucket, _sum and _count).
func exportedNames(t assert.TestingT, url string) map[string]bool {
	out := map[string]bool{}
	resp, err := http.Get(url)
	if !assert.NoError(t, err) {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
			continue
		}
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			out[name] = true
		}
	}
	return out
}

// TestMixinMetricsExported checks that every metric name the monitoring
// mixin (deploy/mixin: dashboards, alerts, recording rules) queries is
// exported by a running cluster's binaries: a distributor and two
// ingesters with real traffic, including the events that make labelled
// metrics appear (a refused series, a backend refusal, an unsorted series,
// a drop-policy candidate, a rules drop, sketch sync between ingesters).
func TestMixinMetricsExported(t *testing.T) {
	t.Parallel()
	c := startUICluster(t)
	want, err := mixin.MetricNames()
	require.NoError(t, err)
	// Cluster-wide analytics make the distributor's fan-out count calls.
	status, _ := rawGet(t, c.distributor.url("/promgov/api/v1/cardinality/metrics"))
	require.Equal(t, http.StatusOK, status)

	// A metric that only appears after an event a test cannot cause on
	// purpose (a handler panic is a bug) is checked in the source instead:
	// its name must be registered by the binaries' code.
	for name, why := range eventOnly {
		require.Contains(t, want, name, "eventOnly lists %s, which the mixin no longer uses", name)
		require.Truef(t, declaredInSource(t, name), "%s (%s) is not declared in pkg/ or internal/", name, why)
		delete(want, name)
	}
	var missing []string
	eventually(t, func(ct *assert.CollectT) bool {
		got := exportedNames(ct, c.distributor.url("/metrics"))
		for _, n := range c.ingesters {
			for name := range exportedNames(ct, n.url("/metrics")) {
				got[name] = true
			}
		}
		missing = missing[:0]
		for name := range want {
			if !got[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0
	}, 30*time.Second, 250*time.Millisecond, "metrics the mixin uses that no binary exports: %v", lazy(func() any {
		var b strings.Builder
		for _, m := range missing {
			b.WriteString("\n  " + m + " (used by " + strings.Join(want[m], "; ") + ")")
		}
		return b.String()
	}))
	t.Logf("every one of the %d metric names the mixin uses is exported by the distributor or the ingesters (and %d event-only names are declared in the source: %v)",
		len(want), len(eventOnly), slices.Sorted(maps.Keys(eventOnly)))
}

// eventOnly are metrics the mixin uses that a binary exports only after an
// event the test cannot cause, with why.
var eventOnly = map[string]string{
	"promgov_request_panics_total": "labelled by route, exported after the first handler panic, which is a bug",
}

// declaredInSource reports whether a non-test Go file under pkg/ or
// internal/ declares the metric name as a string literal.
func declaredInSource(t *testing.T, name string) bool {
	t.Helper()
	found := false
	for _, root := range []string{"../pkg", "../internal"} {
		require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || found {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(b), `Name: "`+name+`"`) {
				found = true
			}
			return err
		}))
	}
	return found
}
