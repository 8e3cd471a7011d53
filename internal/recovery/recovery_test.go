package recovery

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newHandler(t *testing.T) (*Handler, *prometheus.Registry, *strings.Builder) {
	t.Helper()
	var logs strings.Builder
	reg := prometheus.NewRegistry()
	return New(slog.New(slog.NewTextHandler(&logs, nil)), reg), reg, &logs
}

func TestHTTPPanicAnswers500AndKeepsServing(t *testing.T) {
	h, _, logs := newHandler(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /boom", func(http.ResponseWriter, *http.Request) {
		var s []byte
		_ = s[7] // index out of range, like a decoder bug
	})
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") })
	srv := httptest.NewServer(h.HTTP(mux))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/boom", "application/x-protobuf", strings.NewReader("payload"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Contains(t, string(body), "internal error")

	resp, err = http.Get(srv.URL + "/ok")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the server still serves")

	require.Equal(t, 1.0, testutil.ToFloat64(h.panics.WithLabelValues("http", "POST /boom")))
	require.Contains(t, logs.String(), "content_length=7")
	require.Contains(t, logs.String(), "index out of range")
	require.Equal(t, 1, strings.Count(logs.String(), "panic while serving"), "logged once")
}

func TestHTTPAbortHandlerIsPassedOn(t *testing.T) {
	h, _, _ := newHandler(t)
	wrapped := h.HTTP(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	require.PanicsWithError(t, http.ErrAbortHandler.Error(), func() {
		wrapped.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
}

// panicky is a health server whose Check panics.
type panicky struct{ *health.Server }

func (panicky) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic("bug in Check")
}

func TestGRPCPanicAnswersInternal(t *testing.T) {
	h, _, logs := newHandler(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(h.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(h.StreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, panicky{health.NewServer()})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Stop(); require.NoError(t, <-done) }()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	for range 2 {
		_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "x"})
		require.Equal(t, codes.Internal, status.Code(err), "%v", err)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(h.panics.WithLabelValues("grpc", "/grpc.health.v1.Health/Check")))
	require.Contains(t, logs.String(), "request_bytes=3")
}

func TestEdgesShareOneCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(slog.New(slog.DiscardHandler), reg)
	b := New(slog.New(slog.DiscardHandler), reg)
	a.panics.WithLabelValues("http", "x").Inc()
	b.panics.WithLabelValues("grpc", "y").Inc()
	require.Equal(t, 2, testutil.CollectAndCount(reg, "promgov_request_panics_total"))
}
