package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/govstore"
)

// client talks to a distributor's governance API.
type client struct {
	base    string
	user    string
	timeout time.Duration
}

// httpError is an error answer of the API.
type httpError struct {
	code int
	msg  string
	data json.RawMessage
}

func (e *httpError) Error() string {
	s := fmt.Sprintf("%d: %s", e.code, e.msg)
	if e.code == http.StatusConflict && len(e.data) > 0 {
		var m govstore.Meta
		if json.Unmarshal(e.data, &m) == nil {
			s += fmt.Sprintf(" (current version %d by %s: %q)", m.Number, m.Author, m.Message)
		}
	}
	return s
}

// netError is a cluster that could not be reached.
type netError struct{ err error }

func (e *netError) Error() string { return "cannot reach promgov: " + e.err.Error() }

// do sends a request and decodes the envelope's data into out.
func (c *client) do(ctx context.Context, method, path string, body []byte, hdr map[string]string, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if c.user != "" {
		req.Header.Set(govapi.HeaderUser, c.user)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &netError{err}
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &netError{err}
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, &httpError{code: resp.StatusCode, msg: strings.TrimSpace(string(b))}
	}
	if env.Status != "success" {
		return nil, &httpError{code: resp.StatusCode, msg: env.Error, data: env.Data}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
	}
	return resp.Header, nil
}

func (c *client) configGet(ctx context.Context, w io.Writer) error {
	var d govapi.ConfigData
	if _, err := c.do(ctx, http.MethodGet, govapi.PathConfig, nil, nil, &d); err != nil {
		return err
	}
	fmt.Fprintf(w, "# version %d (%s) by %s at %s: %s\n", d.Version.Number, d.Version.Hash, d.Version.Author,
		d.Version.Timestamp.Format(time.RFC3339), d.Version.Message)
	if d.Shadow != nil {
		fmt.Fprintf(w, "# shadow candidate: version %d by %s\n", d.Shadow.Number, d.Shadow.Author)
	}
	_, err := io.WriteString(w, d.YAML)
	return err
}

func (c *client) history(ctx context.Context, w io.Writer) error {
	var d govapi.VersionsData
	if _, err := c.do(ctx, http.MethodGet, govapi.PathVersions, nil, nil, &d); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tPARENT\tMODE\tSTATE\tAUTHOR\tTIME\tMESSAGE")
	for _, v := range d.Versions {
		state := "ok"
		if f, bad := d.Failed[v.Number]; bad {
			state = "failed(" + f.Node + ")"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Number, v.Parent, v.Mode, state, v.Author, v.Timestamp.Format(time.RFC3339), v.Message)
	}
	for _, e := range d.Corrupt {
		fmt.Fprintf(tw, "CORRUPT\t\t\t\t\t\t%s\n", e)
	}
	return tw.Flush()
}

func (c *client) diff(ctx context.Context, from, to uint64, w io.Writer) error {
	path := govapi.PathDiff + "?"
	if from > 0 {
		path += "from=" + strconv.FormatUint(from, 10) + "&"
	}
	if to > 0 {
		path += "to=" + strconv.FormatUint(to, 10)
	}
	var d govapi.DiffData
	if _, err := c.do(ctx, http.MethodGet, path, nil, nil, &d); err != nil {
		return err
	}
	_, err := io.WriteString(w, d.Diff)
	return err
}

func (c *client) apply(ctx context.Context, body []byte, ifMatch, msg string, shadow bool, w io.Writer) error {
	if ifMatch == "" {
		var d govapi.ConfigData
		h, err := c.do(ctx, http.MethodGet, govapi.PathConfig, nil, nil, &d)
		if err != nil {
			return err
		}
		ifMatch = h.Get(govapi.HeaderVersion)
	}
	path := govapi.PathConfig
	if shadow {
		path += "?mode=shadow"
	}
	var m govstore.Meta
	if _, err := c.do(ctx, http.MethodPut, path, body, map[string]string{"If-Match": ifMatch, govapi.HeaderMessage: msg}, &m); err != nil {
		return err
	}
	fmt.Fprintf(w, "version %d written (%s, parent %d, %s)\n", m.Number, m.Mode, m.Parent, m.Hash)
	return nil
}

func (c *client) post(ctx context.Context, path, msg string, w io.Writer) error {
	var m govstore.Meta
	if _, err := c.do(ctx, http.MethodPost, path, nil, map[string]string{govapi.HeaderMessage: msg}, &m); err != nil {
		return err
	}
	fmt.Fprintf(w, "version %d written (%s, parent %d): %s\n", m.Number, m.Mode, m.Parent, m.Message)
	return nil
}

// reject rejects shadow version n: no node stages it again; the active
// version stays.
func (c *client) reject(ctx context.Context, n uint64, reason string, w io.Writer) error {
	var m govstore.RejectMark
	if _, err := c.do(ctx, http.MethodPost, fmt.Sprintf("/promgov/api/v1/config/versions/%d/reject", n), nil, map[string]string{govapi.HeaderMessage: reason}, &m); err != nil {
		return err
	}
	fmt.Fprintf(w, "version %d rejected by %s", m.Version, m.By)
	if m.Reason != "" {
		fmt.Fprintf(w, ": %s", m.Reason)
	}
	fmt.Fprintln(w, "; the active version is unchanged")
	return nil
}

func (c *client) suggestions(ctx context.Context, w io.Writer) error {
	var raw json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, "/promgov/api/v1/usage/suggestions", nil, nil, &raw); err != nil {
		return err
	}
	return printJSON(w, raw)
}

// printJSON writes an answer's data indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}
