package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/promgov/promgov/pkg/retro"
)

// The jobs pages: the retrospective jobs of this distributor (pkg/retro,
// through its API), each with its request, progress per batch, dry run and
// log, and cancel and resume as forms POSTed to the UI, which calls the
// API in-process as the viewer.

// jobRow is a job in the list.
type jobRow struct {
	*retro.Job
	// Cancel and Resume: the job's state allows them.
	Cancel, Resume bool
	// Percent of the series done (0–100).
	Percent float64
}

type jobsPageData struct {
	Jobs []jobRow // newest first
	// MayAct: the viewer may cancel and resume; WhyNot says why not.
	MayAct bool
	WhyNot string
}

// batchCell is one batch of an execution: done (copied, verified and,
// when asked, deleted) or not yet.
type batchCell struct {
	N    int
	Done bool
}

type jobPageData struct {
	Row     jobRow
	Batches []batchCell
	// BatchesHidden counts the batches beyond those drawn.
	BatchesHidden int
	// BatchLog is the log's per-batch lines (what each read, wrote and
	// deleted, and how long each step took); Log the rest.
	BatchLog, Log []string
	MayAct        bool
	WhyNot        string
	// Acted is what a cancel or resume just did.
	Acted string
}

// maxBatchCells bounds the batches the job page draws one by one.
const maxBatchCells = 2000

var batchLine = regexp.MustCompile(`^\S+ batch [0-9]+: `)

func newJobRow(j *retro.Job) jobRow {
	row := jobRow{Job: j}
	switch j.State {
	case retro.StateQueued, retro.StatePlanning, retro.StateRunning, retro.StatePaused:
		row.Cancel = true
	}
	row.Resume = j.State == retro.StatePaused || j.State == retro.StateCancelled
	if p := j.Progress; p.SeriesTotal > 0 {
		row.Percent = 100 * float64(p.SeriesDone) / float64(p.SeriesTotal)
	} else if j.State == retro.StateSucceeded {
		row.Percent = 100
	}
	return row
}

// jobActionAPIPath is the API route a job's cancel needs (resume needs
// the same).
func jobActionAPIPath(id, action string) string { return retro.PathJobs + "/" + id + "/" + action }

// mayAct asks the middleware whether the viewer may cancel and resume
// jobs (the example id stands for any: the routes share their access).
func (u *UI) mayAct(r *http.Request, id string) (bool, string) {
	if _, err := u.permits(r, http.MethodPost, jobActionAPIPath(id, "cancel")); err != nil {
		return false, err.Error()
	}
	return true, ""
}

func (u *UI) jobsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var jobs []*retro.Job
	err := u.api.get(ctx, r, retro.PathJobs, nil, &jobs)
	d := jobsPageData{Jobs: make([]jobRow, 0, len(jobs))}
	for _, j := range slices.Backward(jobs) {
		d.Jobs = append(d.Jobs, newJobRow(j))
	}
	d.MayAct, d.WhyNot = u.mayAct(r, "ID")
	p := pageOpts{}
	for _, row := range d.Jobs {
		if row.Cancel && row.State != retro.StatePaused {
			p.Refresh = jobsRefreshSeconds // a job is moving
		}
	}
	u.renderPage(w, r, http.StatusOK, "jobs", "Jobs", []error{err}, d, p)
}

// jobsRefreshSeconds is how often a page with a running job reloads itself.
const jobsRefreshSeconds = 5

func (u *UI) jobPage(w http.ResponseWriter, r *http.Request) {
	acted := r.URL.Query().Get("acted")
	if acted != "cancel" && acted != "resume" {
		acted = ""
	}
	u.renderJob(w, r, http.StatusOK, acted, nil)
}

// renderJob renders job r.PathValue("id") answered with code; acted says
// what an action just did, err why one was refused.
func (u *UI) renderJob(w http.ResponseWriter, r *http.Request, code int, acted string, actErr error) {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	id := r.PathValue("id")
	var j retro.Job
	if err := u.api.get(ctx, r, retro.PathJobs+"/"+id, nil, &j); err != nil {
		if code == http.StatusOK {
			code = http.StatusBadGateway
			if isStatus(err, http.StatusNotFound) {
				code = http.StatusNotFound
			}
		}
		u.renderPage(w, r, code, "job", "Job "+id, []error{actErr, err}, (*jobPageData)(nil), pageOpts{})
		return
	}
	d := jobPageData{Row: newJobRow(&j), Acted: acted}
	d.MayAct, d.WhyNot = u.mayAct(r, id)
	for i, done := range j.Done {
		if i == maxBatchCells {
			d.BatchesHidden = len(j.Done) - i
			break
		}
		d.Batches = append(d.Batches, batchCell{N: i, Done: done})
	}
	for _, l := range j.Log {
		if batchLine.MatchString(l) {
			d.BatchLog = append(d.BatchLog, l)
		} else {
			d.Log = append(d.Log, l)
		}
	}
	p := pageOpts{}
	if d.Row.Cancel && j.State != retro.StatePaused {
		p.Refresh = jobsRefreshSeconds
	}
	u.renderPage(w, r, code, "job", "Job "+j.ID, []error{actErr}, &d, p)
}

// jobAction serves POST /ui/jobs/{id}/cancel and /resume: it calls the
// jobs API in-process as the viewer and answers 303 to the job's page, or
// the page with the API's refusal and its status.
func (u *UI) jobAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if action != "cancel" && action != "resume" {
		http.NotFound(w, r)
		return
	}
	if _, err := u.permits(r, http.MethodPost, jobActionAPIPath(id, action)); err != nil {
		u.renderJob(w, r, http.StatusForbidden, "", fmt.Errorf("not %s: %w", map[string]string{"cancel": "cancelled", "resume": "resumed"}[action], err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	var j retro.Job
	if err := u.api.do(ctx, r, http.MethodPost, jobActionAPIPath(id, action), nil, nil, nil, &j); err != nil {
		code := http.StatusBadGateway
		var ae *apiError
		if errors.As(err, &ae) {
			code = ae.Status
		}
		u.renderJob(w, r, code, "", err)
		return
	}
	who, _ := u.permits(r, http.MethodPost, jobActionAPIPath(id, action))
	u.d.Logger.Info("retrospective job changed from the UI", "by", who, "action", action, "job", id, "state", j.State)
	http.Redirect(w, r, PathJobs+"/"+id+"?acted="+action, http.StatusSeeOther)
}

// labelsText is a label set as PromQL text: name{a="x", b="y"}, the
// other labels sorted. The page escapes it (label values are
// attacker-controlled).
func labelsText(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(m["__name__"])
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
