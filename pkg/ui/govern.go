package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/govstore"
)

// The configuration pages: the governance store's versions (pkg/govstore,
// through its API, pkg/govapi), their diffs, the rollout, and promote and
// rollback as forms POSTed to the UI, which calls the API in-process.

// rolloutStatus is GET /promgov/api/v1/status/config (govsync.Status).
type rolloutStatus struct {
	Self     string        `json:"self"`
	Active   uint64        `json:"active_version"`
	Nodes    []rolloutNode `json:"nodes"`
	Laggards []string      `json:"laggards"`
}

type rolloutNode struct {
	Node    string `json:"node"`
	Role    string `json:"role"`
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
	Error   string `json:"error"`
}

type versionRow struct {
	govstore.Meta
	Active   bool
	Failed   *govstore.FailedMark
	Rejected *govstore.RejectMark
	// Promote: a shadow version that may be made active; Rollback: an
	// earlier good enforce version whose body differs from the active one;
	// Reject: a shadow candidate newer than the active version, not
	// rejected yet.
	Promote, Rollback, Reject bool
	// Proposal is the preview a proposal was written with (nil: the
	// version is not a proposal, or may no longer be promoted).
	Proposal *proposalView
}

type configPageData struct {
	// Enabled: the distributor has a governance store.
	Enabled  bool
	Active   *govapi.ConfigData
	Head     uint64
	Versions []versionRow // newest first
	Corrupt  []string
	Rollout  *rolloutStatus
	// MayChange: the viewer may promote and roll back; WhyNot says why
	// not.
	MayChange bool
	WhyNot    string
	// Written is the version a promote or rollback just wrote; Rejected
	// the version just rejected.
	Written  *govstore.Meta
	Rejected *govstore.RejectMark
	// Proposals are the rows with a proposal, newest first.
	Proposals []*versionRow
	// Message is the form's message after a refused action.
	Message string
}

// configWriteAPIPath is the API route whose permission the page's actions
// need (promote and rollback need the same).
const configWriteAPIPath = govapi.PathRollback

func (u *UI) configPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	d, errs := u.configData(ctx, r)
	if n, err := strconv.ParseUint(r.URL.Query().Get("written"), 10, 64); err == nil && n > 0 {
		for i := range d.Versions {
			if d.Versions[i].Number == n {
				d.Written = &d.Versions[i].Meta
			}
		}
	}
	if n, err := strconv.ParseUint(r.URL.Query().Get("rejected"), 10, 64); err == nil && n > 0 {
		for i := range d.Versions {
			if d.Versions[i].Number == n {
				d.Rejected = d.Versions[i].Rejected
			}
		}
	}
	u.render(w, r, "config", "Configuration versions", errs, d)
}

// configData reads the store's versions, the active version and the
// rollout through the API, as the viewer of r.
func (u *UI) configData(ctx context.Context, r *http.Request) (configPageData, []error) {
	d := configPageData{Enabled: u.d.Governance}
	if !d.Enabled {
		return d, nil
	}
	var errs []error
	_, err := u.permits(r, http.MethodPost, configWriteAPIPath)
	d.MayChange = err == nil
	if err != nil {
		d.WhyNot = err.Error()
	}
	var vs govapi.VersionsData
	if err := u.api.get(ctx, r, govapi.PathVersions, nil, &vs); err != nil {
		return d, []error{err}
	}
	var active govapi.ConfigData
	switch err := u.api.get(ctx, r, govapi.PathConfig, nil, &active); {
	case err == nil:
		d.Active = &active
	case isStatus(err, http.StatusNotFound):
	default:
		errs = append(errs, err)
	}
	var st rolloutStatus
	if err := u.api.get(ctx, r, govapi.PathStatus, nil, &st); err != nil {
		errs = append(errs, err)
	} else {
		d.Rollout = &st
	}
	d.Corrupt = vs.Corrupt
	d.Versions = versionRows(vs, d.Active)
	for _, v := range vs.Versions {
		d.Head = max(d.Head, v.Number)
	}
	errs = append(errs, u.proposals(ctx, r, d.Versions)...)
	for i := range d.Versions {
		if d.Versions[i].Proposal != nil {
			d.Proposals = append(d.Proposals, &d.Versions[i])
		}
	}
	return d, errs
}

// versionRows are the versions, newest first, with what may be done with
// each: promote a shadow version newer than the active one; roll back to
// an earlier good enforce version whose body differs from the active one.
func versionRows(vs govapi.VersionsData, active *govapi.ConfigData) []versionRow {
	rows := make([]versionRow, 0, len(vs.Versions))
	for _, m := range vs.Versions {
		row := versionRow{Meta: m}
		if f, ok := vs.Failed[m.Number]; ok {
			row.Failed = &f
		}
		if rj, ok := vs.Rejected[m.Number]; ok {
			row.Rejected = &rj
		}
		candidate := row.Failed == nil && row.Rejected == nil && m.Mode == govstore.ModeShadow
		if active != nil {
			a := active.Version
			row.Active = m.Number == a.Number
			good := row.Failed == nil && m.Hash != a.Hash
			row.Promote = good && candidate && m.Number > a.Number
			row.Rollback = good && m.Mode == govstore.ModeEnforce && m.Number < a.Number
			row.Reject = candidate && m.Number > a.Number
		} else {
			row.Promote = candidate
			row.Reject = candidate
		}
		rows = append(rows, row)
	}
	slices.Reverse(rows)
	return rows
}

// isStatus reports whether err is an API answer with status code.
func isStatus(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == code
}

// diffLine is one line of a unified diff with its kind (add, del, hunk,
// file, ctx) for the page's colours and screen readers.
type diffLine struct {
	Kind, Text string
}

type diffPageData struct {
	Enabled  bool
	From, To uint64
	Lines    []diffLine
	Version  *govstore.Version
	Versions []govstore.Meta
}

func (u *UI) diffPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	d := diffPageData{Enabled: u.d.Governance}
	if !d.Enabled {
		u.render(w, r, "diff", "Configuration diff", nil, d)
		return
	}
	q := r.URL.Query()
	params := url.Values{}
	for _, k := range []string{"from", "to"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			params.Set(k, v)
		}
	}
	var errs []error
	var vs govapi.VersionsData
	errs = append(errs, u.api.get(ctx, r, govapi.PathVersions, nil, &vs))
	d.Versions = slices.Clone(vs.Versions)
	slices.Reverse(d.Versions)
	var diff govapi.DiffData
	if err := u.api.get(ctx, r, govapi.PathDiff, params, &diff); err != nil {
		errs = append(errs, err)
	} else {
		d.From, d.To = diff.From, diff.To
		d.Lines = diffLines(diff.Diff)
		var v govstore.Version
		if err := u.api.get(ctx, r, govapi.PathVersions+"/"+strconv.FormatUint(d.To, 10), nil, &v); err != nil {
			errs = append(errs, err)
		} else {
			d.Version = &v
		}
	}
	title := "Configuration diff"
	if d.To > 0 {
		title = fmt.Sprintf("Configuration diff: version %d → %d", d.From, d.To)
	}
	u.render(w, r, "diff", title, errs, d)
}

// diffLines classifies the lines of a unified diff.
func diffLines(diff string) []diffLine {
	var out []diffLine
	for _, l := range strings.SplitAfter(diff, "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		kind := "ctx"
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			kind = "file"
		case strings.HasPrefix(l, "@@"):
			kind = "hunk"
		case strings.HasPrefix(l, "+"):
			kind = "add"
		case strings.HasPrefix(l, "-"):
			kind = "del"
		}
		out = append(out, diffLine{Kind: kind, Text: l})
	}
	return out
}

// maxFormBytes bounds the body of the UI's forms.
const maxFormBytes = 64 << 10

// configAction serves POST /ui/config/promote, /ui/config/rollback and
// /ui/config/reject (a reject keeps the active version and marks the
// candidate rejected; its message is the reason): it
// calls the governance API in-process as the viewer (author: the
// identity's name; If-Match: the newest version the page showed, so a
// change made meanwhile is refused as a conflict, not overwritten) and
// answers 303 to the versions page, or the page with the API's refusal
// and its status.
func (u *UI) configAction(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	fail := func(code int, err error) {
		d, errs := u.configData(ctx, r)
		d.Message = r.PostFormValue("message")
		u.renderStatus(w, r, code, "config", "Configuration versions", append([]error{err}, errs...), d)
	}
	if !u.d.Governance {
		fail(http.StatusNotFound, errors.New("no governance store: set --governance.store.backend (docs/governance.md)"))
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, fmt.Errorf("the form: %w", err))
		return
	}
	var path string
	var params url.Values
	switch r.URL.Path {
	case PathConfigPromote:
		n, err := strconv.ParseUint(r.PostForm.Get("version"), 10, 64)
		if err != nil || n == 0 {
			fail(http.StatusBadRequest, fmt.Errorf("version: %q is not a version number", r.PostForm.Get("version")))
			return
		}
		path = govapi.PathVersions + "/" + strconv.FormatUint(n, 10) + "/promote"
	case PathConfigReject:
		n, err := strconv.ParseUint(r.PostForm.Get("version"), 10, 64)
		if err != nil || n == 0 {
			fail(http.StatusBadRequest, fmt.Errorf("version: %q is not a version number", r.PostForm.Get("version")))
			return
		}
		path = govapi.PathVersions + "/" + strconv.FormatUint(n, 10) + "/reject"
	default:
		path = govapi.PathRollback
		if to := strings.TrimSpace(r.PostForm.Get("to")); to != "" {
			params = url.Values{"to": {to}}
		}
	}
	who, err := u.permits(r, http.MethodPost, path)
	if err != nil {
		fail(http.StatusForbidden, fmt.Errorf("not changed: %w", err))
		return
	}
	hdr := http.Header{govapi.HeaderUser: {who}}
	if m := oneLine(r.PostForm.Get("message")); m != "" {
		hdr.Set(govapi.HeaderMessage, m)
	}
	if im := strings.TrimSpace(r.PostForm.Get("if_match")); im != "" {
		hdr.Set("If-Match", im)
	}
	if r.URL.Path == PathConfigReject {
		var m govstore.RejectMark
		if err := u.api.do(ctx, r, http.MethodPost, path, nil, hdr, nil, &m); err != nil {
			code := http.StatusBadGateway
			var ae *apiError
			if errors.As(err, &ae) {
				code = ae.Status
			}
			fail(code, fmt.Errorf("not rejected: %w", err))
			return
		}
		u.d.Logger.Info("shadow version rejected from the UI", "by", who, "version", m.Version, "reason", m.Reason)
		http.Redirect(w, r, PathConfig+"?rejected="+strconv.FormatUint(m.Version, 10), http.StatusSeeOther)
		return
	}
	var written govstore.Meta
	if err := u.api.do(ctx, r, http.MethodPost, path, params, hdr, nil, &written); err != nil {
		code := http.StatusBadGateway
		var ae *apiError
		if errors.As(err, &ae) {
			code = ae.Status
		}
		if code == http.StatusConflict {
			err = fmt.Errorf("not changed: the configuration changed since this page was loaded; review the versions below and try again (%w)", err)
		} else {
			err = fmt.Errorf("not changed: %w", err)
		}
		fail(code, err)
		return
	}
	u.d.Logger.Info("configuration changed from the UI", "by", who, "action", r.URL.Path, "version", written.Number, "message", written.Message)
	http.Redirect(w, r, PathConfig+"?written="+strconv.FormatUint(written.Number, 10), http.StatusSeeOther)
}

// oneLine is s with line breaks turned into spaces (a header value).
func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// permits is Deps.Permits, everyone ("anonymous") when unset.
func (u *UI) permits(r *http.Request, method, path string) (string, error) {
	if u.d.Permits == nil {
		return "anonymous", nil
	}
	return u.d.Permits(r, method, path)
}
