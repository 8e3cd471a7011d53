package web

import (
	"encoding/json"
	"net/http"
)

// Envelope is the Prometheus HTTP API response envelope, in which every
// promgov API answers (WriteJSON, WriteError) and which its clients decode.
type Envelope[T any] struct {
	// Status is "success" or "error".
	Status string `json:"status"`
	// Data is the answer when Status is "success".
	Data T `json:"data,omitzero"`
	// ErrorType and Error describe a failure.
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
	// Warnings are non-fatal notes on a successful answer.
	Warnings []string `json:"warnings,omitempty"`
}

// WriteJSON answers 200 with data (and warnings, if any) in the envelope:
// {"status":"success","data":data}.
func WriteJSON(w http.ResponseWriter, data any, warnings ...string) {
	write(w, http.StatusOK, Envelope[any]{Status: "success", Data: data, Warnings: warnings})
}

// WriteError answers status with err in the envelope:
// {"status":"error","errorType":errType,"error":err}.
func WriteError(w http.ResponseWriter, status int, errType string, err error) {
	write(w, status, Envelope[any]{Status: "error", ErrorType: errType, Error: err.Error()})
}

// WriteErrorData is WriteError with data beside the error, for a failure
// the client acts on (e.g. a 409 carrying the current version).
func WriteErrorData(w http.ResponseWriter, status int, errType string, err error, data any) {
	write(w, status, Envelope[any]{Status: "error", ErrorType: errType, Error: err.Error(), Data: data})
}

func write(w http.ResponseWriter, status int, e Envelope[any]) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e) // the client went away; nothing to do
}
