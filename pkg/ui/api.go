package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// forwardedHeaders are copied from the page request to the API requests it
// makes, so the API sees the same caller (tenant, authorization).
var forwardedHeaders = []string{"Authorization", "Cookie", "X-Scope-OrgID"}

// apiClient calls promgov's API handler in-process on behalf of a page
// request (answers recorded in an answer). Safe for concurrent use.
type apiClient struct {
	h            http.Handler
	tenantHeader string
}

// apiError is an API answer other than success.
type apiError struct {
	Path   string
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Path, e.Status, e.Msg)
}

// get calls GET path?params and decodes the envelope's data into out.
func (c *apiClient) get(ctx context.Context, from *http.Request, path string, params url.Values, out any) error {
	return c.do(ctx, from, http.MethodGet, path, params, nil, nil, out)
}

// post calls POST path with a JSON body and decodes the data into out.
func (c *apiClient) post(ctx context.Context, from *http.Request, path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, from, http.MethodPost, path, nil, http.Header{"Content-Type": {"application/json"}}, b, out)
}

// do calls method path?params with the headers hdr (beside those copied
// from the page request) and body, and decodes the envelope's data into
// out (unless nil).
func (c *apiClient) do(ctx context.Context, from *http.Request, method, path string, params url.Values, hdr http.Header, body []byte, out any) error {
	u := &url.URL{Path: path, RawQuery: params.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.RemoteAddr = "ui"
	if from != nil {
		for _, h := range append(forwardedHeaders, c.tenantHeader) {
			if v := from.Header.Get(h); h != "" && v != "" {
				req.Header.Set(h, v)
			}
		}
	}
	for k, vs := range hdr {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	rec := &answer{Code: http.StatusOK, header: http.Header{}}
	c.h.ServeHTTP(rec, req)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	raw := rec.Body.Bytes()
	if err := json.Unmarshal(raw, &env); err != nil {
		return &apiError{Path: path, Status: rec.Code, Msg: strings.TrimSpace(truncate(string(raw), 300))}
	}
	if rec.Code != http.StatusOK || env.Status != "success" {
		msg := env.Error
		if msg == "" {
			msg = http.StatusText(rec.Code)
		}
		return &apiError{Path: path, Status: rec.Code, Msg: msg}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// answer records what an in-process API handler answers (what
// httptest.ResponseRecorder does, without linking a test package into the
// binaries).
type answer struct {
	Code        int
	Body        bytes.Buffer
	header      http.Header
	wroteHeader bool
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(code int) {
	if !a.wroteHeader {
		a.Code, a.wroteHeader = code, true
	}
}

func (a *answer) Write(b []byte) (int, error) {
	a.wroteHeader = true
	return a.Body.Write(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
