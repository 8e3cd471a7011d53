package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// searchPageSize is the page size used for /api/search.
const searchPageSize = 1000

// maxResponse bounds one API response body.
const maxResponse = 64 << 20

// ClientOptions configures a Grafana HTTP API client.
type ClientOptions struct {
	// URL is Grafana's base URL, e.g. http://grafana:3000 (a sub-path is kept).
	URL string
	// Token is a service-account token sent as a Bearer token (optional).
	Token string
	// OrgID is sent as X-Grafana-Org-Id when non-zero.
	OrgID int
	// HTTPClient is used for requests; http.DefaultClient when nil.
	HTTPClient *http.Client
}

// Client lists and fetches dashboards through the Grafana HTTP API
// (/api/search and /api/dashboards/uid/{uid}). Safe for concurrent use.
type Client struct {
	cfg  ClientOptions
	base *url.URL
}

// NewClient returns a client for the Grafana at cfg.URL.
func NewClient(cfg ClientOptions) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("grafana url %q: must be an absolute http(s) URL", cfg.URL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Client{cfg: cfg, base: u}, nil
}

// SearchHit is one entry of /api/search.
type SearchHit struct {
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Type        string `json:"type"`
	FolderTitle string `json:"folderTitle"`
}

// Search lists every dashboard (type dash-db), following pages until an
// empty page or one with nothing new (servers may cap the page size or ignore
// the page parameter).
func (c *Client) Search(ctx context.Context) ([]SearchHit, error) {
	var all []SearchHit
	seen := map[string]bool{}
	for page := 1; ; page++ {
		q := url.Values{"type": {"dash-db"}, "limit": {strconv.Itoa(searchPageSize)}, "page": {strconv.Itoa(page)}}
		var hits []SearchHit
		if err := c.get(ctx, "/api/search", q, &hits); err != nil {
			return nil, fmt.Errorf("grafana search page %d: %w", page, err)
		}
		fresh := 0
		for _, h := range hits {
			if seen[h.UID] {
				continue
			}
			seen[h.UID] = true
			fresh++
			if h.Type == "" || h.Type == "dash-db" {
				all = append(all, h)
			}
		}
		if fresh == 0 {
			return all, nil
		}
	}
}

// Dashboard fetches one dashboard by uid.
func (c *Client) Dashboard(ctx context.Context, uid string) (*Dashboard, error) {
	var raw map[string]any
	if err := c.get(ctx, "/api/dashboards/uid/"+url.PathEscape(uid), nil, &raw); err != nil {
		return nil, fmt.Errorf("grafana dashboard %s: %w", uid, err)
	}
	d, err := fromModel(raw)
	if err != nil {
		return nil, fmt.Errorf("grafana dashboard %s: %w", uid, err)
	}
	if d.UID == "" {
		d.UID = uid
	}
	for _, lp := range d.LibraryPanels {
		var el struct {
			Result struct {
				Model map[string]any `json:"model"`
			} `json:"result"`
		}
		if err := c.get(ctx, "/api/library-elements/"+url.PathEscape(lp), nil, &el); err != nil {
			return nil, fmt.Errorf("grafana dashboard %s: library panel %s: %w", uid, lp, err)
		}
		d.AddLibraryPanel(el.Result.Model)
	}
	d.LibraryPanels = nil
	return d, nil
}

// Dashboards lists and fetches every dashboard. Dashboards that fail to
// fetch are reported in the joined error alongside those that loaded.
func (c *Client) Dashboards(ctx context.Context) ([]*Dashboard, error) {
	hits, err := c.Search(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Dashboard, 0, len(hits))
	var errs []error
	for _, h := range hits {
		d, err := c.Dashboard(ctx, h.UID)
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, d)
	}
	return out, errors.Join(errs...)
}

// StatusError is a non-2xx answer from Grafana.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Body is the start of the response body.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("http status %d: %s", e.Code, e.Body)
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	if c.cfg.OrgID != 0 {
		req.Header.Set("X-Grafana-Org-Id", strconv.Itoa(c.cfg.OrgID))
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		b := string(body)
		if len(b) > 256 {
			b = b[:256]
		}
		return &StatusError{Code: resp.StatusCode, Body: b}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	return nil
}
