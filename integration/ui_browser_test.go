package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium returns the headless browser to drive: PROMGOV_CHROMIUM, else
// Debian's chromium on PATH. Without one the test skips with the reason,
// unless PROMGOV_REQUIRE_INTEGRATION is set (then it fails).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMGOV_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: install Debian's chromium package (make deps) or set PROMGOV_CHROMIUM"
	if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is a headless chromium tab that saves screenshots into dir.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
	// auth is the Authorization header every request sends ("": none).
	auth string
}

// as makes every request of the tab (and open's check) send the
// Authorization header h; "" sends none.
func (b *browser) as(h string) {
	b.t.Helper()
	b.auth = h
	headers := network.Headers{}
	if h != "" {
		headers["Authorization"] = h
	}
	require.NoError(b.t, b.run(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers})
		return chromedp.Void{}, err
	}))
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start %s", bin)
	// Screenshots are test artefacts: go test -artifacts -outputdir DIR
	// keeps them under DIR.
	dir := t.ArtifactDir()
	t.Logf("UI screenshots: %s", dir)
	return &browser{t: t, ctx: ctx, dir: dir}
}

// run runs steps in order with a timeout.
func (b *browser) run(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// value runs one action that answers a value, with a timeout.
func value[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err)
	return v
}

// open loads u and checks it is a UI page (answered 200 with a main
// element).
func (b *browser) open(u string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b.t, err)
	if b.auth != "" {
		req.Header.Set("Authorization", b.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(b.t, http.StatusOK, resp.StatusCode, "GET %s: %s", u, body)
	want, err := url.Parse(u)
	require.NoError(b.t, err)
	// A page that reloads itself (a jobs page with a moving job carries a
	// meta refresh) can fire its reload while the tab navigates away. Either
	// the reload wins, and the tab ends on the old page, or it cancels the
	// new navigation, which then fails with net::ERR_ABORTED. So the tab
	// must end on u, and the navigation is repeated until it does.
	for attempt := 1; ; attempt++ {
		err := b.run(chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("main")))
		var le *chromedp.LoadError
		if errors.As(err, &le) && le.ErrorText == "net::ERR_ABORTED" && attempt < 5 {
			b.t.Logf("open %s: attempt %d aborted by the page's own reload; again", u, attempt)
			continue
		}
		require.NoError(b.t, err, "open %s", u)
		at := value(b, chromedp.Evaluate[string](`location.pathname`))
		if at == want.EscapedPath() {
			return
		}
		require.Less(b.t, attempt, 5, "open %s: the tab stayed on %s", u, at)
	}
}

// shot saves a full-page screenshot as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := value(b, chromedp.FullScreenshot(100))
	p := filepath.Join(b.dir, name+".png")
	require.NoError(b.t, os.WriteFile(p, png, 0o644))
	b.t.Logf("screenshot %s", p)
}

// text is the visible text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return value(b, chromedp.Text(chromedp.CSS(sel)))
}

// count is how many elements match the CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return value(b, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
}

// pwned reports whether any injected script ran.
func (b *browser) pwned() bool {
	b.t.Helper()
	return value(b, chromedp.Evaluate[bool](`window.__pwned !== undefined`))
}

// TestUIInBrowser loads every page of a distributor's and an ingester's UI
// in headless chromium against a running cluster with real traffic and
// checks what a person would: the exploding metric ranks first among the
// top offenders, the unused metric is listed as unused, the trace form
// explains why a series was dropped, and HTML in a label value or a metric
// name is shown as text and never runs.
func TestUIInBrowser(t *testing.T) {
	b := newBrowser(t)
	c := startUICluster(t)
	base := c.distributor.url("")

	// The usage classification has seen the traffic.
	eventually(t, func(ct *assert.CollectT) bool {
		m := usageMetrics(ct, c, "")
		return m[uiUnused].State == "unused" && m[uiUsed].State == "used"
	}, 30*time.Second, 200*time.Millisecond, "usage never classified %s unused and %s used", uiUnused, uiUsed)

	t.Run("overview", func(t *testing.T) {
		b.open(base + "/")
		main := b.text("main")
		for _, want := range []string{"Cluster health", "ingester-1", "ingester-2", "ACTIVE", "WAL and forwarding", "Refused and dropped", "max_series_per_metric", "active ruleset"} {
			assert.Contains(t, main, want)
		}
		assert.NotContains(t, main, "not answering", "every ingester reports its health")
		// Rates, from the history sampled every second: the ingest rate and
		// the refused rate by reason, every ingester's refusals included.
		eventually(t, func(ct *assert.CollectT) bool {
			b.open(base + "/")
			if !strings.HasSuffix(strings.TrimSpace(b.text("#ingest-rate")), "/s") {
				return false
			}
			for _, row := range strings.Split(b.text("#refused tbody"), "\n") {
				if strings.Contains(row, "max_series_per_metric") && strings.Contains(row, "/s") {
					return true // the ingesters' refusals have a rate
				}
			}
			return false
		}, 30*time.Second, 500*time.Millisecond, "the overview never showed the ingest and refused rates")
		assert.Contains(t, b.text("#refused thead"), "per second")
		assert.Positive(t, b.count("#refused-chart svg polyline"), "the refused rate is charted")
		b.shot("distributor-overview")
	})

	t.Run("top offenders", func(t *testing.T) {
		b.open(base + "/ui/offenders")
		first := b.text("#offenders tbody tr:first-child th a")
		assert.Equal(t, uiExploding, first, "the exploding metric ranks first")
		assert.Contains(t, b.text("#offenders tbody"), uiHostileName, "a metric name with HTML is shown as text")
		assert.False(t, b.pwned(), "HTML in a metric name ran")
		b.shot("distributor-top-offenders")

		// Sorting by clicking (and by keyboard) the refused column keeps the
		// exploding metric first: it is the only one refused.
		require.NoError(t, b.run(chromedp.Focus(chromedp.CSS(`#offenders thead th:nth-child(7)`)), chromedp.KeyEvent("\r")))
		assert.Equal(t, uiExploding, b.text("#offenders tbody tr:first-child th a"))
		// Filtering by name as one types hides the other rows.
		require.NoError(t, b.run(chromedp.SendKeys(chromedp.CSS("#filter"), "calm")))
		visible := value(b, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("#offenders tbody tr")).filter(r => !r.hidden).length`))
		assert.Equal(t, 1, visible)
		b.shot("distributor-top-offenders-filtered")

		// Per tenant, server-side.
		b.open(base + "/ui/offenders?" + url.Values{"tenant": {uiTenant}, "sort": {"refused"}}.Encode())
		assert.Equal(t, uiExploding, b.text("#offenders tbody tr:first-child th a"))
	})

	t.Run("metric", func(t *testing.T) {
		b.open(base + "/ui/metric?" + url.Values{"name": {uiExploding}}.Encode())
		main := b.text("main")
		assert.Contains(t, main, "Distinct values per label")
		assert.Contains(t, main, "id", "the exploding label is charted")
		assert.Contains(t, main, "Who reads it")
		assert.Contains(t, main, "drop-debug", "the active rules are listed with their counters")
		assert.GreaterOrEqual(t, b.count("figure.chart svg rect.b0"), 2, "one bar per label")
		b.shot("distributor-metric")

		// The used metric is read by the dashboard.
		b.open(base + "/ui/metric?" + url.Values{"name": {uiUsed}}.Encode())
		assert.Contains(t, b.text("main"), "UI test")
	})

	t.Run("why was this series dropped", func(t *testing.T) {
		b.open(base + "/ui/metric?" + url.Values{"name": {uiDropped}}.Encode())
		require.NoError(t, b.run(
			chromedp.SetValue(chromedp.CSS("#series"), uiDropped+`{job="worker"}`),
			chromedp.SetValue(chromedp.CSS("#trace_tenant"), uiTenant),
			chromedp.Click(chromedp.CSS(`form.trace button`)),
			chromedp.WaitVisible(chromedp.CSS("#trace-result")),
		))
		res := b.text("#trace-result")
		assert.Contains(t, b.text("#trace-result .outcome"), "dropped")
		assert.Contains(t, res, "drop-debug")
		assert.Contains(t, res, `matched regex "debug_.*"`)
		b.shot("distributor-metric-trace")
	})

	t.Run("label value with HTML is text", func(t *testing.T) {
		b.open(base + "/ui/metric?" + url.Values{"name": {uiHostile}, "series": {uiHostile + `{path="` + uiHostileHTML + `"}`}, "trace_tenant": {uiTenant}}.Encode())
		res := b.text("#trace-result")
		assert.Contains(t, res, uiHostileHTML, "the label value is shown verbatim, as text")
		assert.Zero(t, b.count("main script"), "no script element came from the label value")
		assert.Zero(t, b.count("main b"), "no element came from the label value")
		assert.False(t, b.pwned(), "the label value's script ran")
		b.shot("distributor-metric-hostile-label")
	})

	t.Run("usage", func(t *testing.T) {
		b.open(base + "/ui/usage?state=unused")
		body := b.text("#usage tbody")
		assert.Contains(t, body, uiUnused, "the unused metric is listed")
		assert.NotContains(t, body, uiUsed+"\t")
		assert.Positive(t, b.count("svg circle.dot"), "the cost × readers chart has points")
		assert.Contains(t, b.text("main"), "healthy", "the dashboard source is healthy")
		assert.False(t, b.pwned())
		b.shot("distributor-usage-unused")
		b.open(base + "/ui/usage")
		b.shot("distributor-usage")
	})

	t.Run("rules", func(t *testing.T) {
		b.open(base + "/ui/rules")
		body := b.text("#rules tbody")
		assert.Contains(t, body, "drop-debug")
		assert.Contains(t, body, "shadow-prefix")
		assert.Contains(t, body, "drop/enforce: 1", "the drop rule's counter: the trace form's traces above did not count")
		// The suggestions, with what each would save and its rule.
		sug := b.text("#suggestions-table tbody")
		assert.Contains(t, sug, "drop_metrics")
		assert.Contains(t, sug, uiUnused, "dropping the unused metric is suggested")
		assert.Positive(t, b.count("#suggestions-table tbody td.num"), "with the series and samples/s saved")
		b.shot("distributor-rules")
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS("#suggestions-table tbody tr:first-child summary"))))
		b.shot("distributor-rules-suggestion-preview")
	})

	t.Run("ring page stays", func(t *testing.T) {
		require.NoError(t, b.run(chromedp.Navigate(base+"/ring"), chromedp.WaitReady(chromedp.CSS("table"))))
		assert.Contains(t, b.text("body"), "ingester-1")
		b.shot("distributor-ring")
	})

	t.Run("ingester", func(t *testing.T) {
		for _, n := range c.ingesters {
			b.open(n.url("/"))
			main := b.text("main")
			assert.Contains(t, main, n.name)
			assert.Contains(t, main, "WAL and forwarding")
			b.shot(n.name + "-overview")
			b.open(n.url("/ui/offenders"))
			b.shot(n.name + "-top-offenders")
		}
		// The exploding metric's owner lists it first.
		found := false
		for _, n := range c.ingesters {
			b.open(n.url("/ui/offenders"))
			if strings.TrimSpace(b.text("#offenders tbody tr:first-child")) != "" && strings.Contains(b.text("#offenders tbody tr:first-child th"), uiExploding) {
				found = true
				b.open(n.url("/ui/metric?" + url.Values{"name": {uiExploding}}.Encode()))
				assert.Contains(t, b.text("main"), "Distinct values per label")
				b.shot(n.name + "-metric")
			}
		}
		assert.True(t, found, "the exploding metric's owner ranks it first")
	})
}
