package distributor

import (
	"fmt"
	"net/http"
)

// WritePath is where the distributor receives remote write.
const WritePath = "/api/v1/write"

// wrongWritePath is a write endpoint of another system that senders get
// pointed at by mistake, and whose it is.
type wrongWritePath struct{ path, system string }

// wrongWritePaths lists them.
func wrongWritePaths() []wrongWritePath {
	return []wrongWritePath{
		{"/api/v1/push", "Mimir's and Cortex's"},
		{"/api/prom/push", "Cortex's (legacy)"},
		{"/api/v1/receive", "Thanos Receive's"},
		{"/receive", "Thanos Receive's"},
		{"/write", ""},
		{"/prometheus/api/v1/write", "VictoriaMetrics'"},
		{"/api/v1/import", "VictoriaMetrics' import"},
		{"/api/v2/write", "InfluxDB's"},
		{"/otlp/v1/metrics", "OTLP's"},
		{"/api/v1/otlp/v1/metrics", "OTLP's"},
		{"/v1/metrics", "OTLP's"},
	}
}

// MountWrongWritePaths answers the write paths of other systems (Mimir's
// /api/v1/push, OTLP's /otlp/v1/metrics, …) with a 404 that names the
// path the distributor receives on, instead of a bare "page not found".
func MountWrongWritePaths(mux *http.ServeMux) {
	for _, w := range wrongWritePaths() {
		mux.Handle(w.path, wrongWritePathHandler(w))
	}
}

func wrongWritePathHandler(w wrongWritePath) http.Handler {
	msg := fmt.Sprintf("404 %s is not a promgov path: promgov receives Prometheus Remote Write 1.0 and 2.0 at POST %s", w.path, WritePath)
	switch {
	case w.system == "OTLP's":
		msg += "; it does not receive OTLP: send OTLP metrics through an OpenTelemetry Collector whose prometheusremotewrite exporter points at " + WritePath
	case w.system != "":
		msg += fmt.Sprintf(" (%s is %s write path); point the sender's remote write URL at http://<distributor>%s", w.path, w.system, WritePath)
	default:
		msg += fmt.Sprintf("; point the sender's remote write URL at http://<distributor>%s", WritePath)
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		http.Error(rw, msg, http.StatusNotFound)
	})
}
