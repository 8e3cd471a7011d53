// Package recovery is the last line of defence at every request edge of
// promgov: a panic while serving one request answers that request with an
// internal error (HTTP 500, gRPC Internal), is logged once with the shape of
// the input and a stack, and is counted in promgov_request_panics_total,
// instead of killing the process and every request in flight with it.
//
// It is not the fix. Inputs are bounded and validated where they are
// decoded; every panic this package catches is a bug to fix where it
// happens, and the counter exists so that an alert can say so.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxLogged bounds each client-controlled string put in the log line.
const maxLogged = 256

// Handler recovers panics at one binary's request edges. It is safe for
// concurrent use.
type Handler struct {
	logger *slog.Logger
	panics *prometheus.CounterVec
}

// New returns a Handler counting into reg (nil: not registered). Every
// edge of a binary (its HTTP server, its gRPC server) may call New with the
// same reg: they share one counter, told apart by its labels.
func New(logger *slog.Logger, reg prometheus.Registerer) *Handler {
	h := &Handler{
		logger: logger,
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_request_panics_total",
			Help: "Requests whose handling panicked and were answered with an internal error; each one is a bug.",
		}, []string{"edge", "route"}),
	}
	if reg != nil {
		if err := reg.Register(h.panics); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err) // a programming error, like MustRegister
			}
			h.panics = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return h
}

// HTTP wraps next so that a panic answers 500. The route label is the
// ServeMux pattern that matched (bounded by the routes the binary mounts).
// http.ErrAbortHandler, which net/http uses to abort a response on purpose,
// is passed on.
func (h *Handler) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			h.panics.WithLabelValues("http", route).Inc()
			h.logger.Error("panic while serving an HTTP request; answered 500. This is a bug: please report it with this line",
				"route", route, "method", r.Method, "path", clip(r.URL.Path),
				"content_length", r.ContentLength, "content_type", clip(r.Header.Get("Content-Type")),
				"content_encoding", clip(r.Header.Get("Content-Encoding")), "user_agent", clip(r.UserAgent()),
				"remote", r.RemoteAddr, "panic", clip(fmt.Sprint(v)), "stack", string(debug.Stack()))
			// If the handler already wrote its header this only logs a
			// superfluous WriteHeader; the client sees a cut response.
			http.Error(w, "internal error while handling the request; the server logged it as a bug", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// UnaryServerInterceptor answers a panicking unary call with Internal.
func (h *Handler) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = h.grpcPanic(ctx, info.FullMethod, req, v)
			}
		}()
		return handler(ctx, req)
	}
}

// StreamServerInterceptor answers a panicking streaming call with Internal.
func (h *Handler) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = h.grpcPanic(ss.Context(), info.FullMethod, nil, v)
			}
		}()
		return handler(srv, ss)
	}
}

func (h *Handler) grpcPanic(ctx context.Context, method string, req any, v any) error {
	h.panics.WithLabelValues("grpc", method).Inc()
	size := -1
	if m, ok := req.(proto.Message); ok {
		size = proto.Size(m)
	}
	from := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	h.logger.Error("panic while serving a gRPC call; answered Internal. This is a bug: please report it with this line",
		"method", method, "request_bytes", size, "peer", from,
		"panic", clip(fmt.Sprint(v)), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error while handling the call; the server logged it as a bug")
}

func clip(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return s[:maxLogged] + "…"
}
