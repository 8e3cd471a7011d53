package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/promgov/promgov/pkg/preview"
)

// preview prints the impact preview of a candidate: a summary, then per
// rule, per limit and per changed metric, then example traces (or the
// answer as JSON).
func (c *client) preview(ctx context.Context, body []byte, tenant string, examples int, asJSON bool, w io.Writer) error {
	q := url.Values{"examples": {strconv.Itoa(examples)}}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodPost, preview.Path+"?"+q.Encode(), body, map[string]string{"Content-Type": "application/yaml"}, &raw); err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, raw)
	}
	var d preview.Data
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return printPreview(w, &d)
}

// propose turns suggestion id into a shadow version and prints it with
// its preview.
func (c *client) propose(ctx context.Context, id string, asJSON bool, w io.Writer) error {
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodPost, strings.Replace(preview.PathPropose, "{id}", url.PathEscape(id), 1), nil, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, raw)
	}
	var p preview.Proposal
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	m := p.Version
	fmt.Fprintf(w, "version %d written (%s, parent %d): %s\n", m.Number, m.Mode, m.Parent, m.Message)
	fmt.Fprintf(w, "review it with: promgovctl config diff --to %d; make it active with: promgovctl config promote %d\n\n", m.Number, m.Number)
	return printPreview(w, &p.Preview)
}

func printPreview(w io.Writer, d *preview.Data) error {
	t := d.Totals
	fmt.Fprintf(w, "candidate %s: %d ingesters, %d metrics sampled (%d series)\n", d.Candidate, d.Ingesters, d.SampledMetrics, d.SampledSeries)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tSERIES\tSAMPLES/S")
	fmt.Fprintf(tw, "before\t%s\t%s\n", num(t.SeriesBefore), num(t.SamplesRateBefore))
	fmt.Fprintf(tw, "after\t%s\t%s\n", num(t.SeriesAfter), num(t.SamplesRateAfter))
	fmt.Fprintf(tw, "saved\t%s\t%s\n", num(t.SeriesSaved), num(t.SamplesRateBefore-t.SamplesRateAfter))
	fmt.Fprintf(tw, "dropped\t%s\t%s\n", num(t.SeriesDropped), num(t.SamplesRateDropped))
	fmt.Fprintf(tw, "refused by limits\t%s\t%s\n", num(t.SeriesRefused), num(t.SamplesRateRefused))
	fmt.Fprintf(tw, "rewritten / tagged\t%s / %s\t\n", num(t.SeriesRewritten), num(t.SeriesTagged))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nRULES")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tKIND\tMODE\tEFFECT\tSERIES\tSAMPLES/S\tMETRICS")
	for _, r := range d.Rules {
		if len(r.Effects) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\tnone\t0\t0\t0\n", r.Rule, r.Kind, r.Mode)
		}
		for _, e := range r.Effects {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Rule, r.Kind, r.Mode, e.Effect, num(e.Series), num(e.SamplesRate), e.Metrics)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.DropUnusedBlocked != "" {
		fmt.Fprintf(w, "usage.drop_unused would drop nothing now: %s\n", d.DropUnusedBlocked)
	}

	if len(d.Limits) > 0 {
		fmt.Fprintln(w, "\nLIMITS")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LIMIT\tTENANT\tMETRIC\tLABEL (VALUES)\tMAX\tMODE\tSERIES AFTER RULES\tREFUSED\tSAMPLES/S REFUSED")
		for _, l := range d.Limits {
			label := ""
			if l.Label != "" {
				label = fmt.Sprintf("%s (%s)", l.Label, num(l.Values))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Limit, l.Tenant, l.Metric, label, l.Max, l.Mode, num(l.SeriesAfterRules), num(l.SeriesRefused), num(l.SamplesRateRefused))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nMETRICS CHANGED")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tMETRIC\tSERIES BEFORE\tSERIES AFTER\tSAMPLES/S BEFORE\tSAMPLES/S AFTER\tWRITTEN AS\tSAMPLED")
	for _, m := range d.Metrics {
		as := ""
		for i, o := range m.Outputs {
			if i > 0 {
				as += ","
			}
			as += o.Metric
		}
		if as == "" {
			as = "(dropped)"
		}
		sampled := strconv.Itoa(m.Sampled)
		if m.Exact {
			sampled += " (all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Tenant, m.Metric, num(m.SeriesBefore), num(m.SeriesAfter), num(m.SamplesRateBefore), num(m.SamplesRateAfter), as, sampled)
	}
	if d.MetricsOmitted > 0 {
		fmt.Fprintf(tw, "... %d more\t\t\t\t\t\t\t\n", d.MetricsOmitted)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(d.Examples) > 0 {
		fmt.Fprintln(w, "\nEXAMPLES")
		for _, ex := range d.Examples {
			fmt.Fprintf(w, "%s %s", ex.Action, ex.Input)
			if ex.Output != "" {
				fmt.Fprintf(w, " -> %s", ex.Output)
			}
			fmt.Fprintln(w)
			for i, st := range ex.Trace {
				if st.Effect == "out_of_scope" || st.Effect == "none" {
					continue
				}
				fmt.Fprintf(w, "  %d. %s [%s, %s]: %s", i+1, st.Rule, st.Kind, st.Mode, st.Effect)
				if st.Reason != "" {
					fmt.Fprintf(w, ": %s", st.Reason)
				}
				if st.After != "" {
					fmt.Fprintf(w, " -> %s", st.After)
				}
				fmt.Fprintln(w)
			}
		}
	}
	return nil
}

// num renders an estimate: whole numbers from 10 up, one decimal below.
func num(v float64) string {
	if v >= 10 || v <= -10 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
