package retro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/promgov/promgov/pkg/web"
)

// API paths.
const (
	PathJobs          = web.APIPrefix + "/jobs"
	PathRetrospective = PathJobs + "/retrospective"
)

// MaxSpecBytes bounds the body of POST .../jobs/retrospective (a candidate
// document is at most 4 MiB, like a governance version).
const MaxSpecBytes = 5 << 20

// Register mounts the jobs API on mux.
func (m *Manager) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathRetrospective, m.handleSubmit)
	mux.HandleFunc("GET "+PathJobs, func(w http.ResponseWriter, r *http.Request) {
		list, err := m.ListJobs(r.Context())
		if err != nil {
			m.d.Logger.Warn("cannot list retrospective jobs", "err", err)
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
			return
		}
		web.WriteJSON(w, list)
	})
	mux.HandleFunc("GET "+PathJobs+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		m.answer(w, func() (*Job, error) { return m.GetJob(r.Context(), r.PathValue("id")) })
	})
	mux.HandleFunc("POST "+PathJobs+"/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		m.answer(w, func() (*Job, error) { return m.CancelJob(r.Context(), r.PathValue("id")) })
	})
	mux.HandleFunc("GET "+PathOpenMetrics+"{id}", m.handleOpenMetrics)
	mux.HandleFunc("POST "+PathJobs+"/{id}/resume", func(w http.ResponseWriter, r *http.Request) {
		m.answer(w, func() (*Job, error) { return m.ResumeJob(r.Context(), r.PathValue("id")) })
	})
}

// DecodeSpec decodes a job request strictly: unknown fields are errors
// naming the field.
func DecodeSpec(body []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("job request: %w", err)
	}
	if dec.More() {
		return Spec{}, errors.New("job request: more than one JSON value")
	}
	return s, nil
}

func (m *Manager) handleSubmit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSpecBytes))
	if err != nil {
		web.WriteError(w, http.StatusRequestEntityTooLarge, "bad_data", fmt.Errorf("job request over %d bytes", MaxSpecBytes))
		return
	}
	spec, err := DecodeSpec(body)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	m.answer(w, func() (*Job, error) { return m.Submit(r.Context(), spec) })
}

// answer writes fn's job, or its error with the status it calls for.
func (m *Manager) answer(w http.ResponseWriter, fn func() (*Job, error)) {
	j, err := fn()
	var bad *BadRequestError
	var conflict *ConflictError
	switch {
	case err == nil:
		web.WriteJSON(w, j)
	case errors.As(err, &bad):
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
	case errors.As(err, &conflict):
		web.WriteError(w, http.StatusConflict, "conflict", err)
	case errors.Is(err, ErrNotFound):
		web.WriteError(w, http.StatusNotFound, "not_found", err)
	default:
		m.d.Logger.Warn("retrospective job request failed", "err", err)
		web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
	}
}
