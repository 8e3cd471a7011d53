package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/promgov/promgov/pkg/usage"
)

// analyzeUsage prints what the dashboards and rule files under paths read
// (offline, no cluster): one row per metric, or the Analysis as JSON. It
// prints whatever loaded and then fails when a file could not be read or
// decoded, so a CI job notices a dashboard it did not check.
func analyzeUsage(paths []string, output string, w io.Writer) error {
	if len(paths) == 0 {
		return &usageError{"usage analyze: want dashboard and rule FILEs or folders"}
	}
	if output != "table" && output != "json" {
		return &usageError{fmt.Sprintf("usage analyze: -o %q: want table or json", output)}
	}
	a, loadErr := usage.AnalyzePaths(paths)
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(a); err != nil {
			return err
		}
	} else if err := analysisTable(a, w); err != nil {
		return err
	}
	if loadErr != nil {
		return fmt.Errorf("some files could not be analysed:\n%w", loadErr)
	}
	return nil
}

func analysisTable(a *usage.Analysis, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tSTATE\tREADERS\tLABELS READ")
	for _, m := range a.Metrics {
		state := string(m.State)
		if m.Reason != "" {
			state += " (" + m.Reason + ")"
		}
		labels := strings.Join(m.ReadLabels, ",")
		if m.AllLabels {
			labels = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, state, readers(m.UsedBy), labels)
	}
	for _, p := range a.Patterns {
		op := "=~"
		if p.Negative {
			op = "!~"
		}
		fmt.Fprintf(tw, "{__name__%s%q}\tpattern\t%s\t\n", op, p.Regex, readers(p.UsedBy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d metrics and %d name patterns read by %d dashboards and %d rules (%d files, %d expressions, %d did not parse)\n",
		len(a.Metrics), len(a.Patterns), a.Dashboards, a.Rules, a.Files, a.Expressions, a.ParseErrors)
	for _, e := range a.SampleErrors {
		fmt.Fprintln(w, "  did not parse:", e)
	}
	return nil
}

// readers summarises readers as counts per kind: "2 dashboard, 1 alert".
func readers(by []usage.UsedBy) string {
	var kinds []string
	n := map[string]int{}
	for _, u := range by {
		if n[u.Kind] == 0 {
			kinds = append(kinds, u.Kind)
		}
		n[u.Kind]++
	}
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
