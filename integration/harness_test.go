package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promgov/promgov/internal/testport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	binDir     string
	prometheus string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	prometheus = os.Getenv("PROMGOV_PROMETHEUS")
	if prometheus == "" {
		skipReason = "PROMGOV_PROMETHEUS is not set: run `make test`, which builds Prometheus 3.16 and sets it"
	} else if _, err := os.Stat(prometheus); err != nil {
		skipReason = fmt.Sprintf("PROMGOV_PROMETHEUS=%s: %v", prometheus, err)
	}
	if skipReason != "" && os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
		fmt.Fprintln(os.Stderr, "integration tests cannot run:", skipReason)
		return 1
	}
	if skipReason == "" {
		dir, err := os.MkdirTemp("", "promgov-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/distributor", "./cmd/ingester", "./cmd/loadgen", "./cmd/promgovctl")
		cmd.Dir = ".."
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build binaries:", err)
			return 1
		}
		binDir = dir
	}
	return m.Run()
}

func requireIntegration(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// freeAddr returns a loopback address with a port nobody listens on and no
// other test of this binary was given.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testport.Addr(t)
}

// lazy formats as its function's value at the time the message is printed:
// require.Eventually's message arguments are evaluated when it is called,
// so a plain value would show the state before the wait, not after it.
type lazy func() any

func (l lazy) String() string { return fmt.Sprint(l()) }

// T is what the HTTP helpers need from a test: a *testing.T, or the
// *assert.CollectT of an eventually condition, where a failed assertion
// (a refused connection while a process starts, a 503 while a ring
// settles) fails only that attempt and the next tick tries again.
//
// A condition of require.Eventually must never call require on the test's
// *testing.T: a failure there ends the condition's goroutine, no answer
// ever arrives, and the wait runs to its timeout and fails however healthy
// the cluster became. Use eventually and pass its ct to the helpers.
type T interface {
	require.TestingT
	Helper()
}

// eventually waits until cond returns true. cond gets a CollectT for the
// helpers it calls: an assertion failing on ct fails that attempt only.
// The failure message shows the last attempt's failed assertions.
// To fail the test at once on a condition (a process exited, an answer
// that must never come), return true and assert after the wait: failing
// ct fails only that attempt, and the wait retries until its timeout.
func eventually(t *testing.T, cond func(ct *assert.CollectT) bool, waitFor, tick time.Duration, msgAndArgs ...any) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		if !cond(ct) {
			ct.FailNow()
		}
	}, waitFor, tick, msgAndArgs...)
}

// waitReady polls url until it answers 200, and fails at once if p exits.
func waitReady(t *testing.T, p *process, url string) {
	t.Helper()
	waitReadyVia(t, p, http.DefaultClient, url)
}

// waitReadyVia is waitReady through client (TLS, credentials). p is not
// ready until the wait succeeds: if the test fails meanwhile, p's stacks
// are dumped (process.report).
func waitReadyVia(t *testing.T, p *process, client *http.Client, url string) {
	t.Helper()
	p.ready.Store(false)
	var last string
	var mu sync.Mutex
	require.Eventually(t, func() bool {
		if !p.Running() {
			return true // reported below, without waiting for the timeout
		}
		resp, err := client.Get(url)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			last = err.Error()
			return false
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "%s never became ready at %s (last answer: %v)", p.name, url,
		lazy(func() any { mu.Lock(); defer mu.Unlock(); return last }))
	require.True(t, p.Running(), "%s exited while starting: %v", p.name, lazy(func() any { return p.exitErr() }))
	p.ready.Store(true)
}

// backend is a real Prometheus 3.16 receiving remote write 1.0 and 2.0.
type backend struct {
	proc *process
	addr string
	// client and scheme reach a backend serving TLS with credentials
	// (nil and "" for plain HTTP).
	client *http.Client
	scheme string
}

// httpClient is the client that reaches the backend.
func (b *backend) httpClient() *http.Client {
	if b.client != nil {
		return b.client
	}
	return http.DefaultClient
}

// base is the backend's URL without a path.
func (b *backend) base() string {
	if b.scheme != "" {
		return b.scheme + "://" + b.addr
	}
	return "http://" + b.addr
}

// startBackend starts a backend in a new directory on a free port.
func startBackend(t *testing.T) *backend {
	t.Helper()
	return startBackendAt(t, t.TempDir(), freeAddr(t))
}

// startBackendAt starts a backend on the data in dir, listening on addr, so
// that it can be stopped and started again on the same data (the WAL tests).
func startBackendAt(t *testing.T, dir, addr string) *backend {
	t.Helper()
	return startPrometheusAt(t, "prometheus", prometheus, dir, addr,
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
		"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
		// exemplar-storage keeps exemplars; type-and-unit-labels turns the
		// metadata a series arrives with into __type__/__unit__ labels, the
		// only way the query API shows remote-written metadata.
		"--enable-feature=exemplar-storage,type-and-unit-labels",
	)
}

// startPrometheusAt starts the Prometheus binary bin as a remote write
// receiver on the data in dir, listening on addr, with args added.
func startPrometheusAt(t *testing.T, name, bin, dir, addr string, args ...string) *backend {
	t.Helper()
	p := startProcess(t, name, bin, append(prometheusArgs(t, dir, addr), args...)...)
	waitReady(t, p, "http://"+addr+"/-/ready")
	return &backend{proc: p, addr: addr}
}

// prometheusArgs writes the configuration of a receiver on the data in dir
// and returns the flags that start it on addr.
func prometheusArgs(t *testing.T, dir, addr string) []string {
	t.Helper()
	cfg := filepath.Join(dir, "prometheus.yml")
	// A ring change hands a metric to a new owner while the old owner may
	// still hold some of its samples, so the backend sees them out of order
	// for up to a batch deadline (docs/architecture.md, "Ring changes"); a
	// WAL replay re-sends samples it may already have (exact duplicates).
	require.NoError(t, os.WriteFile(cfg, []byte("storage:\n  tsdb:\n    out_of_order_time_window: 30m\n"), 0o644))
	return []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver",
		"--storage.tsdb.retention.time=1d",
	}
}

func (b *backend) writeURL() string { return b.base() + "/api/v1/write" }

// apiGet calls the Prometheus HTTP API and decodes data into out.
func apiGet(t T, base, path string, params url.Values, out any) {
	t.Helper()
	apiGetVia(t, http.DefaultClient, base, path, params, out)
}

// apiGetVia is apiGet through client (TLS, credentials).
func apiGetVia(t T, client *http.Client, base, path string, params url.Values, out any) {
	t.Helper()
	resp, err := client.Get(base + path + "?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &env))
	require.Equal(t, "success", env.Status, "%s", body)
	require.NoError(t, json.Unmarshal(env.Data, out))
}

// rangeSeries is one series of a range-vector query answer.
type rangeSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     [][2]any          `json:"values"`
	Histograms [][2]any          `json:"histograms"`
}

// rawSamples returns every stored sample of the series matching selector,
// keyed by their label set rendered with renderLabels.
func (b *backend) rawSamples(t T, selector string) map[string]rangeSeries {
	t.Helper()
	var data struct {
		ResultType string        `json:"resultType"`
		Result     []rangeSeries `json:"result"`
	}
	apiGetVia(t, b.httpClient(), b.base(), "/api/v1/query", url.Values{
		"query": {selector + "[1h]"},
		"time":  {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}, &data)
	out := make(map[string]rangeSeries, len(data.Result))
	for _, s := range data.Result {
		out[renderLabels(s.Metric)] = s
	}
	return out
}

// count evaluates an instant query that returns one number (0 for empty).
func (b *backend) count(t T, query string) float64 {
	t.Helper()
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	apiGetVia(t, b.httpClient(), b.base(), "/api/v1/query", url.Values{"query": {query}}, &data)
	if len(data.Result) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	return v
}

func renderLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// postRW sends a remote-write body to url and returns status, headers and body.
func postRW(t T, url, contentType string, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Content-Encoding", "snappy")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// metricSum scrapes url (a /metrics endpoint) and sums every series of the
// metric name (all label sets; a name may end in a partial label set such
// as `x{code="429"` to select by its first labels). It returns -1 when the scrape fails, so a
// restarting process does not fail the caller's Eventually.
func metricSum(url, name string) float64 {
	return metricSumVia(http.DefaultClient, url, name)
}

// metricSumVia is metricSum through client (TLS, credentials).
func metricSumVia(client *http.Client, url, name string) float64 {
	resp, err := client.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if !strings.Contains(name, "{") && !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// TestWALKill9IngesterUnderLoad kills an ingester with SIGKILL while
// loadgen pushes at a steady rate, restarts it on the same WAL directory,
// and finds every sample the distributor acknowledged in the backend.
