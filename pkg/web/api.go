package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/promgov/promgov/pkg/remotewrite"
)

// APIPrefix is the path prefix of every promgov-owned HTTP API on both
// binaries (cardinality, usage, rules, ring status): /api/v1/... belongs to
// the Prometheus API, which a distributor proxies to its query backend.
const APIPrefix = "/promgov/api/v1"

// LegacyAPIPrefix is where promgov's own APIs were served before they moved
// under APIPrefix. Those paths answer redirects for one release.
const LegacyAPIPrefix = "/api/v1"

// LegacyDeprecated is when the legacy API paths were deprecated; redirects
// carry it in the Deprecation header (RFC 9745).
var LegacyDeprecated = time.Date(2026, time.December, 4, 0, 0, 0, 0, time.UTC)

// RedirectLegacy mounts on mux, for each pattern of a promgov API (a method
// and a path under APIPrefix, e.g. "GET /promgov/api/v1/cardinality/"), the
// same method and path under LegacyAPIPrefix answering 308 Permanent
// Redirect to the path and query under APIPrefix, so a POST is repeated
// with its body. Each answer carries Deprecation and Link
// rel="successor-version" headers; the first request of each pattern logs
// a warning. logger may be nil. Like http.ServeMux.Handle it panics on a
// malformed pattern.
func RedirectLegacy(mux *http.ServeMux, logger *slog.Logger, patterns ...string) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		rest, under := strings.CutPrefix(path, APIPrefix+"/")
		if !ok || !under {
			panic(fmt.Sprintf("web.RedirectLegacy: pattern %q is not a method and a path under %s", p, APIPrefix))
		}
		mux.Handle(method+" "+LegacyAPIPrefix+"/"+rest, &legacyRedirect{logger: logger})
	}
}

// legacyRedirect is one legacy pattern's redirect. Safe for concurrent use.
type legacyRedirect struct {
	logger *slog.Logger
	once   sync.Once
}

func (l *legacyRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	old := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(old, LegacyAPIPrefix+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	target := APIPrefix + "/" + rest
	loc := target
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	l.once.Do(func() {
		l.logger.Warn("deprecated API path: promgov's own APIs moved under "+APIPrefix+"; the old path answers a redirect until the next release",
			"path", r.URL.Path, "successor", target, "method", r.Method, "user_agent", r.UserAgent())
	})
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Deprecation", fmt.Sprintf("@%d", LegacyDeprecated.Unix()))
	h.Set("Link", "<"+target+`>; rel="successor-version"`)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusPermanentRedirect)
	if r.Method != http.MethodHead {
		_, _ = fmt.Fprintf(w, "%s moved to %s\n", r.URL.Path, target)
	}
}

// RequestTenant returns the tenant a read API request asks about: its
// tenant URL parameter, else the header named header (trimmed), else ""
// (every tenant). The header alone is enough, as on the write path. When
// both are set they must name the same tenant: the header is typically set
// by an authenticating gateway, so the parameter must not widen what it
// allows, and ignoring either would answer for a tenant the caller did not
// ask about.
//
// A tenant ID that breaks the write path's rules (remotewrite.ValidateTenantID)
// is an error naming the rule, from the parameter or the header alike: a
// read API must not echo, log or look up what the write path refuses.
func RequestTenant(r *http.Request, header string) (string, error) {
	param := r.URL.Query().Get("tenant")
	var hdr string
	if header != "" {
		hdr = strings.TrimSpace(r.Header.Get(header))
	}
	if param != "" {
		if err := remotewrite.ValidateTenantID(param); err != nil {
			return "", fmt.Errorf("tenant parameter: %w", err)
		}
	}
	if hdr != "" {
		if err := remotewrite.ValidateTenantID(hdr); err != nil {
			err.(*remotewrite.TenantError).Header = header
			return "", err
		}
	}
	switch {
	case hdr == "":
		return param, nil
	case param == "" || param == hdr:
		return hdr, nil
	}
	return "", fmt.Errorf("tenant: the tenant parameter %q and the %s header %q name different tenants; send one, or the same in both", param, header, hdr)
}
