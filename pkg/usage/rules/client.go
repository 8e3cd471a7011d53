package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponse bounds one rules API response body.
const maxResponse = 64 << 20

// ClientOptions configures a rules API client.
type ClientOptions struct {
	// URL is the API base: Prometheus "http://prom:9090", Mimir
	// "http://mimir/prometheus", vmalert "http://vmalert:8880". The client
	// requests URL + "/api/v1/rules".
	URL string
	// Tenant is sent as X-Scope-OrgID (Mimir/Cortex) when set.
	Tenant string
	// BearerToken is sent as Authorization: Bearer when set.
	BearerToken string
	// HTTPClient is used for requests; http.DefaultClient when nil.
	HTTPClient *http.Client
}

// Client reads rules from a Prometheus-compatible /api/v1/rules endpoint
// (Prometheus, Mimir/Cortex ruler, Thanos, vmalert). Safe for concurrent use.
type Client struct {
	cfg ClientOptions
	u   *url.URL
}

// NewClient validates cfg and returns a client.
func NewClient(cfg ClientOptions) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("rules api url %q: must be an absolute http(s) URL", cfg.URL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/rules"
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Client{cfg: cfg, u: u}, nil
}

type apiResponse struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
	Data      struct {
		Groups []struct {
			Name  string `json:"name"`
			File  string `json:"file"`
			Rules []struct {
				Type        string            `json:"type"`
				Name        string            `json:"name"`
				Query       string            `json:"query"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"data"`
}

// APIError is a failed rules API answer (non-2xx or status "error").
type APIError struct {
	// Code is the HTTP status code.
	Code int
	// Msg is the error text from the envelope or body.
	Msg string
}

// Error implements error.
func (e *APIError) Error() string { return fmt.Sprintf("rules api: status %d: %s", e.Code, e.Msg) }

// Rules fetches every rule group and returns the rules.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build rules request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.Tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.cfg.Tenant)
	}
	if c.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rules request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("read rules body: %w", err)
	}
	var ar apiResponse
	jerr := json.Unmarshal(body, &ar)
	if resp.StatusCode/100 != 2 || (jerr == nil && ar.Status == "error") {
		msg := ar.Error
		if msg == "" {
			msg = string(body)
			if len(msg) > 256 {
				msg = msg[:256]
			}
		}
		return nil, &APIError{Code: resp.StatusCode, Msg: msg}
	}
	if jerr != nil {
		return nil, fmt.Errorf("decode rules json: %w", jerr)
	}
	var out []Rule
	for _, g := range ar.Data.Groups {
		for _, r := range g.Rules {
			switch r.Type {
			case "recording":
				out = append(out, newRule(KindRecording, g.Name, r.Name, r.Query, nil))
			default:
				var refs []string
				for _, a := range r.Annotations {
					refs = append(refs, templateLabels(a)...)
				}
				out = append(out, newRule(KindAlert, g.Name, r.Name, r.Query, refs))
			}
		}
	}
	return out, nil
}
