package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/retro"
)

// jobs runs `promgovctl jobs retrospective|list|get|cancel|resume|openmetrics`.
func (c *client) jobs(ctx context.Context, sub string, rest []string, w io.Writer) error {
	switch sub {
	case "retrospective":
		return c.retrospective(ctx, rest, w)
	case "openmetrics":
		if len(rest) != 1 {
			return &usageError{"jobs openmetrics: want one job ID (the output goes to standard output)"}
		}
		return c.stream(ctx, retro.PathOpenMetrics+rest[0], w)
	case "list":
		var js []retro.Job
		if _, err := c.do(ctx, "GET", retro.PathJobs, nil, nil, &js); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMODE\tSTATE\tSERIES\tSAMPLES WRITTEN\tSELECTOR")
		for _, j := range js {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\n", j.ID, j.Spec.Mode, j.State, j.Progress.SeriesDone, j.Progress.SeriesTotal, j.Progress.SamplesWritten, j.Spec.Selector)
		}
		return tw.Flush()
	case "get", "cancel", "resume":
		fs := newFlags("jobs " + sub)
		output := fs.String("o", "text", "Output: text or json.")
		if err := fs.Parse(rest); err != nil {
			return &usageError{err.Error()}
		}
		if fs.NArg() != 1 {
			return &usageError{"jobs " + sub + ": want one job ID"}
		}
		method, path := "POST", retro.PathJobs+"/"+fs.Arg(0)+"/"+sub
		if sub == "get" {
			method, path = "GET", retro.PathJobs+"/"+fs.Arg(0)
		}
		var j retro.Job
		if _, err := c.do(ctx, method, path, nil, nil, &j); err != nil {
			return err
		}
		return printJob(w, &j, *output)
	}
	return &usageError{fmt.Sprintf("unknown command \"jobs %s\": want jobs retrospective|list|get|cancel|resume|openmetrics", sub)}
}

func (c *client) retrospective(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlags("jobs retrospective")
	var s retro.Spec
	candidate := fs.String("candidate", "", "Governance YAML file whose rules apply (default: --version, or the active version).")
	fs.Uint64Var(&s.Version, "version", 0, "Stored governance version whose rules apply (0: the active one).")
	fs.StringVar(&s.Rule, "rule", "", "Apply only the rule of this name.")
	fs.StringVar(&s.Selector, "selector", "", "Series selector (PromQL).")
	start := fs.String("start", "", "Start of the range: RFC 3339, or a duration ago (2h).")
	end := fs.String("end", "now", "End of the range: RFC 3339, a duration ago, or now.")
	fs.StringVar(&s.Tenant, "tenant", "", "Tenant the rules see and remote write sends.")
	kind := fs.String("backend-kind", "", "Backend kind (prometheus, victoriametrics, mimir, thanos); default: the node's.")
	url := fs.String("backend-url", "", "Backend query API base URL; default: the node's.")
	writeURL := fs.String("backend-write-url", "", "Remote write URL of the copies (required for mimir and thanos).")
	execute := fs.Bool("execute", false, "Execute (default: dry run).")
	openMetrics := fs.Bool("openmetrics", false, "Write the transformed series to OpenMetrics files for promtool instead of the backend (fetch them with jobs openmetrics ID).")
	fs.BoolVar(&s.DeleteOriginals, "delete-originals", false, "Delete each batch's originals once its copy is verified.")
	fs.BoolVar(&s.CleanTombstones, "clean-tombstones", false, "Prometheus: clean tombstones once every batch is done (with --delete-originals).")
	fs.BoolVar(&s.Confirm, "confirm", false, "Confirm a job over more series than the node's confirm threshold.")
	fs.Float64Var(&s.Throttles.MaxSeriesPerSecond, "max-series-per-second", 0, "Throttle (0: none).")
	fs.Float64Var(&s.Throttles.MaxSamplesPerSecond, "max-samples-per-second", 0, "Throttle (0: none).")
	fs.IntVar(&s.Throttles.MaxConcurrency, "max-concurrency", 1, "Batches in flight.")
	wait := fs.Bool("wait", false, "Wait until the job ends; exit 1 unless it succeeded.")
	output := fs.String("o", "text", "Output: text or json.")
	if err := fs.Parse(args); err != nil {
		return &usageError{err.Error()}
	}
	var err error
	now := time.Now()
	if s.Start, err = parseWhen(*start, now); err != nil {
		return &usageError{"--start: " + err.Error()}
	}
	if s.End, err = parseWhen(*end, now); err != nil {
		return &usageError{"--end: " + err.Error()}
	}
	if *candidate != "" {
		b, err := os.ReadFile(*candidate)
		if err != nil {
			return &usageError{err.Error()}
		}
		s.Candidate = string(b)
	}
	if *kind != "" || *url != "" || *writeURL != "" {
		s.Backend = &retro.HTTPBackendConfig{Kind: *kind, URL: *url, WriteURL: *writeURL}
	}
	switch {
	case *execute && *openMetrics:
		return &usageError{"--execute and --openmetrics: give one of them"}
	case *execute:
		s.Mode = retro.ModeExecute
	case *openMetrics:
		s.Mode = retro.ModeOpenMetrics
	}
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var j retro.Job
	if _, err := c.do(ctx, "POST", retro.PathRetrospective, body, map[string]string{"Content-Type": "application/json"}, &j); err != nil {
		return err
	}
	for *wait && !ended(j.State) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := c.do(ctx, "GET", retro.PathJobs+"/"+j.ID, nil, nil, &j); err != nil {
			return err
		}
	}
	if err := printJob(w, &j, *output); err != nil {
		return err
	}
	if *wait && j.State != retro.StateSucceeded {
		return fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
	}
	return nil
}

func ended(state string) bool {
	switch state {
	case retro.StateSucceeded, retro.StateFailed, retro.StatePaused, retro.StateCancelled:
		return true
	}
	return false
}

// parseWhen reads an RFC 3339 time, "now", or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("required")
	case s == "now":
		return now, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

func printJob(w io.Writer, j *retro.Job, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	p := j.Progress
	fmt.Fprintf(w, "job %s: %s %s, state %s\n", j.ID, j.Spec.Mode, j.Spec.Selector, j.State)
	if j.Error != "" {
		fmt.Fprintf(w, "error: %s\n", j.Error)
	}
	if d := j.DryRun; d != nil {
		est := "no throttle set"
		if d.EstimatedSeconds > 0 {
			est = fmt.Sprintf("estimated %.0fs at the throttles", d.EstimatedSeconds)
		}
		fmt.Fprintf(w, "dry run: %d series matched, %d unchanged, %d affected (%d renamed, %d relabelled, %d dropped, %d merged) into %d series; %d samples (%d rewritten, %d dropped); %s\n",
			d.SeriesMatched, d.SeriesUnchanged, d.SeriesAffected, d.SeriesRenamed, d.SeriesRelabelled, d.SeriesDropped, d.SeriesMerged, d.TargetSeries,
			d.SamplesAffected, d.SamplesRewritten, d.SamplesDropped, est)
		if d.SeriesAggregated > 0 || d.SeriesMergeRefused > 0 {
			fmt.Fprintf(w, "aggregation: %d series (%d samples) into %d output groups; %d merged series refused (no aggregation rule takes them)\n",
				d.SeriesAggregated, d.SamplesAggregated, d.AggregationGroups, d.SeriesMergeRefused)
		}
		for _, ex := range d.Examples {
			rule := ex.Rule
			if ex.Aggregation != "" {
				rule += ", aggregation " + ex.Aggregation
			}
			fmt.Fprintf(w, "  %s (%s): %v -> %v\n", ex.Action, rule, ex.Before, ex.After)
		}
	}
	if j.Spec.Mode == retro.ModeExecute {
		fmt.Fprintf(w, "progress: %d/%d series, %d/%d batches, %d samples read, %d written, %d series deleted, %.0f samples/s, eta %.0fs\n",
			p.SeriesDone, p.SeriesTotal, p.BatchesDone, p.BatchesTotal, p.SamplesRead, p.SamplesWritten, p.SeriesDeleted, p.SamplesPerSecond, p.ETASeconds)
	}
	if len(j.Log) > 0 {
		fmt.Fprintf(w, "log:\n  %s\n", strings.Join(j.Log, "\n  "))
	}
	return nil
}

// stream GETs path and copies a successful answer's body to w as it comes;
// an error answer is decoded from its envelope.
func (c *client) stream(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.base, "/")+path, nil)
	if err != nil {
		return &usageError{err.Error()}
	}
	if c.user != "" {
		req.Header.Set(govapi.HeaderUser, c.user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &netError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var env struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &env) != nil || env.Error == "" {
			env.Error = strings.TrimSpace(string(b))
		}
		return &httpError{code: resp.StatusCode, msg: env.Error}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return &netError{err}
	}
	return nil
}
