// Package govapi serves the governance store's HTTP API under
// /promgov/api/v1: the current configuration and its version, writes with
// optimistic concurrency (If-Match), the history, diffs, promote, rollback,
// reject of shadow candidates, the proposals' previews and the cluster's
// rollout status. Answers use the Prometheus API envelope.
package govapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/web"
)

// Paths, under web.APIPrefix.
const (
	PathConfig   = "/promgov/api/v1/config"
	PathVersions = "/promgov/api/v1/config/versions"
	PathDiff     = "/promgov/api/v1/config/diff"
	PathRollback = "/promgov/api/v1/config/rollback"
	PathStatus   = "/promgov/api/v1/status/config"
)

// Headers.
const (
	HeaderUser    = "X-Promgov-User"
	HeaderMessage = "X-Promgov-Message"
	HeaderVersion = "X-Promgov-Version"
)

// Notifier is told about every version written here (govsync.Syncer).
// Safe for concurrent use.
type Notifier interface {
	Notify(version uint64)
	Status() any
}

// API is the handlers. Safe for concurrent use.
type API struct {
	store   *govstore.Store
	sync    Notifier
	timeout time.Duration
	logger  *slog.Logger
}

// New returns the API on store; sync is told about writes.
func New(store *govstore.Store, sync Notifier, timeout time.Duration, logger *slog.Logger) *API {
	return &API{store: store, sync: sync, timeout: timeout, logger: logger}
}

// Register mounts the API on mux. The writes refuse cross-origin browser
// requests (403): a page of another site cannot make a browser that holds
// an admin's credentials (basic auth, a client certificate) change the
// configuration. Clients that are not browsers (promgovctl, curl) send
// neither Sec-Fetch-Site nor Origin and are not affected.
func (a *API) Register(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fail(w, http.StatusForbidden, "forbidden", errors.New("cross-origin browser request refused: change the configuration from promgov's own UI, promgovctl or an API client"), nil)
	}))
	write := func(h http.HandlerFunc) http.Handler { return csrf.Handler(h) }
	mux.HandleFunc("GET "+PathConfig, a.getConfig)
	mux.Handle("PUT "+PathConfig, write(a.putConfig))
	mux.HandleFunc("GET "+PathVersions, a.listVersions)
	mux.HandleFunc("GET "+PathVersions+"/{n}", a.getVersion)
	mux.Handle("POST "+PathVersions+"/{n}/promote", write(a.promote))
	mux.Handle("POST "+PathVersions+"/{n}/reject", write(a.reject))
	mux.HandleFunc("GET "+PathVersions+"/{n}/proposal", a.proposal)
	mux.HandleFunc("GET "+PathDiff, a.diff)
	mux.Handle("POST "+PathRollback, write(a.rollback))
	a.RegisterStatus(mux)
}

// RegisterStatus mounts only the rollout status (ingesters).
func (a *API) RegisterStatus(mux *http.ServeMux) { mux.HandleFunc("GET "+PathStatus, a.status) }

func ok(w http.ResponseWriter, data any) { web.WriteJSON(w, data) }

func fail(w http.ResponseWriter, code int, typ string, err error, data any) {
	web.WriteErrorData(w, code, typ, err, data)
}

// storeError answers err with its status: 409 (with the current version),
// 503, 404, 400.
func (a *API) storeError(w http.ResponseWriter, err error) {
	var ce *govstore.ConflictError
	var ue *govstore.UnavailableError
	switch {
	case errors.As(err, &ce):
		fail(w, http.StatusConflict, "conflict", err, ce.Current)
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		a.logger.Warn("governance store unavailable", "err", err)
		fail(w, http.StatusServiceUnavailable, "unavailable", err, nil)
	case errors.Is(err, govstore.ErrNotFound):
		fail(w, http.StatusNotFound, "not_found", err, nil)
	case errors.Is(err, govstore.ErrCorrupt):
		fail(w, http.StatusInternalServerError, "internal", err, nil)
	default:
		fail(w, http.StatusBadRequest, "bad_data", err, nil)
	}
}

func (a *API) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.timeout)
}

// ConfigData is GET /config: the active version and its YAML.
type ConfigData struct {
	Version govstore.Meta  `json:"version"`
	Shadow  *govstore.Meta `json:"shadow,omitempty"`
	YAML    string         `json:"yaml"`
}

func (a *API) getConfig(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	st, err := a.store.Resolve(ctx)
	if err != nil {
		a.storeError(w, err)
		return
	}
	if st.Active == nil {
		fail(w, http.StatusNotFound, "not_found", errors.New("the governance store has no active version yet"), nil)
		return
	}
	d := ConfigData{Version: st.Active.Metadata(), YAML: st.Active.Body}
	if st.Shadow != nil {
		m := st.Shadow.Metadata()
		d.Shadow = &m
	}
	w.Header().Set(HeaderVersion, strconv.FormatUint(st.Head, 10))
	ok(w, d)
}

// ifMatch parses the If-Match header: the version the write edits.
func ifMatch(r *http.Request) (uint64, bool, error) {
	h := strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
	if h == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("If-Match: %q is not a version number; send the version the change edits, e.g. If-Match: 3 (0 on an empty store)", h)
	}
	return n, true, nil
}

func author(r *http.Request) string {
	if u := strings.TrimSpace(r.Header.Get(HeaderUser)); u != "" {
		return u
	}
	return "anonymous"
}

func (a *API) putConfig(w http.ResponseWriter, r *http.Request) {
	n, set, err := ifMatch(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err, nil)
		return
	}
	if !set {
		fail(w, http.StatusPreconditionRequired, "bad_data",
			errors.New("If-Match is required: send the version the change edits (GET "+PathConfig+" returns it in "+HeaderVersion+")"), nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, govstore.MaxBodyBytes))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "bad_data", fmt.Errorf("body: %w (limit %d bytes)", err, govstore.MaxBodyBytes), nil)
		return
	}
	mode := govstore.Mode(r.URL.Query().Get("mode"))
	a.writeVersion(w, r, govstore.WriteRequest{Body: body, IfMatch: n, Author: author(r), Message: r.Header.Get(HeaderMessage), Mode: mode})
}

func (a *API) writeVersion(w http.ResponseWriter, r *http.Request, req govstore.WriteRequest) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	v, err := a.store.Write(ctx, req)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.logger.Info("governance version written", "version", v.Number, "mode", v.Mode, "author", v.Author, "parent", v.Parent, "message", v.Message)
	// Every node runs a shadow candidate beside the active version too.
	a.sync.Notify(v.Number)
	w.Header().Set(HeaderVersion, strconv.FormatUint(v.Number, 10))
	ok(w, v.Metadata())
}

// VersionsData is GET /config/versions.
type VersionsData struct {
	Versions []govstore.Meta                `json:"versions"`
	Failed   map[uint64]govstore.FailedMark `json:"failed"`
	Rejected map[uint64]govstore.RejectMark `json:"rejected"`
	Corrupt  []string                       `json:"corrupt"`
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	metas, bad, err := a.store.List(ctx)
	if err != nil {
		a.storeError(w, err)
		return
	}
	failed, err := a.store.Failed(ctx)
	if err != nil {
		a.storeError(w, err)
		return
	}
	rejected, err := a.store.Rejected(ctx)
	if err != nil {
		a.storeError(w, err)
		return
	}
	d := VersionsData{Versions: metas, Failed: failed, Rejected: rejected, Corrupt: []string{}}
	if d.Versions == nil {
		d.Versions = []govstore.Meta{}
	}
	for _, e := range bad {
		d.Corrupt = append(d.Corrupt, e.Error())
	}
	ok(w, d)
}

func parseVersion(s, what string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: %q is not a version number (1, 2, ...)", what, s)
	}
	return n, nil
}

// versionArg parses the {n} of the request's path; a bad one is answered
// 400 and good is false.
func versionArg(w http.ResponseWriter, r *http.Request) (n uint64, good bool) {
	n, err := parseVersion(r.PathValue("n"), "version")
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err, nil)
		return 0, false
	}
	return n, true
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request) {
	n, good := versionArg(w, r)
	if !good {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	v, err := a.store.Get(ctx, n)
	if err != nil {
		a.storeError(w, err)
		return
	}
	ok(w, v)
}

// DiffData is GET /config/diff.
type DiffData struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	Diff string `json:"diff"`
}

func (a *API) diff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx, cancel := a.ctx(r)
	defer cancel()
	var to uint64
	var err error
	if s := q.Get("to"); s != "" {
		if to, err = parseVersion(s, "to"); err != nil {
			fail(w, http.StatusBadRequest, "bad_data", err, nil)
			return
		}
	} else if to, err = a.store.Head(ctx); err != nil {
		a.storeError(w, err)
		return
	}
	from := uint64(0)
	if s := q.Get("from"); s != "" {
		if from, err = parseVersion(s, "from"); err != nil {
			fail(w, http.StatusBadRequest, "bad_data", err, nil)
			return
		}
	} else if to > 1 {
		from = to - 1
	}
	var fromBody []byte
	if from > 0 {
		v, err := a.store.Get(ctx, from)
		if err != nil {
			a.storeError(w, err)
			return
		}
		fromBody = []byte(v.Body)
	}
	tv, err := a.store.Get(ctx, to)
	if err != nil {
		a.storeError(w, err)
		return
	}
	d, err := govstore.Diff(fromBody, []byte(tv.Body), fmt.Sprintf("version %d", from), fmt.Sprintf("version %d", to))
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err, nil)
		return
	}
	ok(w, DiffData{From: from, To: to, Diff: d})
}

// promote makes version n (typically a shadow candidate) active as a new
// enforce version with n's body.
func (a *API) promote(w http.ResponseWriter, r *http.Request) {
	n, good := versionArg(w, r)
	if !good {
		return
	}
	a.copyVersion(w, r, n, fmt.Sprintf("promote version %d", n))
}

// rollback makes an earlier version (?to=, default the enforce version
// before the active one) active again as a new version.
func (a *API) rollback(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	var to uint64
	var err error
	if s := r.URL.Query().Get("to"); s != "" {
		if to, err = parseVersion(s, "to"); err != nil {
			fail(w, http.StatusBadRequest, "bad_data", err, nil)
			return
		}
	} else {
		prev, err := a.store.PreviousGood(ctx)
		if err != nil {
			a.storeError(w, err)
			return
		}
		to = prev.Number
	}
	a.copyVersion(w, r, to, fmt.Sprintf("rollback to version %d", to))
}

func (a *API) copyVersion(w http.ResponseWriter, r *http.Request, n uint64, msg string) {
	ctx, cancel := a.ctx(r)
	defer cancel()
	src, err := a.store.Get(ctx, n)
	if err != nil {
		a.storeError(w, err)
		return
	}
	im, set, err := ifMatch(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err, nil)
		return
	}
	if !set {
		if im, err = a.store.Head(ctx); err != nil {
			a.storeError(w, err)
			return
		}
	}
	if m := r.Header.Get(HeaderMessage); m != "" {
		msg += ": " + m
	}
	a.writeVersion(w, r, govstore.WriteRequest{Body: []byte(src.Body), IfMatch: im, Author: author(r), Message: msg, Mode: govstore.ModeEnforce})
}

// reject marks shadow version n rejected (X-Promgov-User: who,
// X-Promgov-Message: why): no node stages it again. Nothing else changes:
// the active version stays, history keeps the candidate.
func (a *API) reject(w http.ResponseWriter, r *http.Request) {
	n, good := versionArg(w, r)
	if !good {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	m, err := a.store.Reject(ctx, n, author(r), r.Header.Get(HeaderMessage))
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.logger.Info("governance shadow version rejected", "version", n, "by", m.By, "reason", m.Reason)
	// The nodes read the store again and stop running its shadow copies.
	a.sync.Notify(n)
	ok(w, m)
}

// proposal answers the suggestion and preview a proposal (POST
// /promgov/api/v1/suggestions/{id}/propose) was written with; 404 for a
// version that is not a proposal.
func (a *API) proposal(w http.ResponseWriter, r *http.Request) {
	n, good := versionArg(w, r)
	if !good {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	b, err := a.store.Proposal(ctx, n)
	if err != nil {
		a.storeError(w, err)
		return
	}
	ok(w, json.RawMessage(b))
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) { ok(w, a.sync.Status()) }
