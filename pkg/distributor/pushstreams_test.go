package distributor

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// streamIngester is an IngesterService that counts how it is pushed to,
// to inject what a real ingester does not do on demand: be an older
// version (no PushStream), hold a push past its deadline.
type streamIngester struct {
	ingesterv1.UnimplementedIngesterServiceServer
	noStreams bool // an ingester from before PushStream
	// answer answers a push (a written count of 1 when nil).
	answer func(ctx context.Context, n int32) (*ingesterv1.PushResponse, error)

	calls, attempts, opened, ended, pushes atomic.Int32
}

func (f *streamIngester) respond(ctx context.Context) (*ingesterv1.PushResponse, error) {
	n := f.pushes.Add(1)
	if f.answer == nil {
		return &ingesterv1.PushResponse{SamplesWritten: 1}, nil
	}
	return f.answer(ctx, n)
}

func (f *streamIngester) Push(ctx context.Context, _ *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	f.calls.Add(1)
	return f.respond(ctx)
}

func (f *streamIngester) PushStream(s ingesterv1.IngesterService_PushStreamServer) error {
	f.attempts.Add(1)
	if f.noStreams {
		return f.UnimplementedIngesterServiceServer.PushStream(s)
	}
	f.opened.Add(1)
	defer f.ended.Add(1)
	for {
		if _, err := s.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp, err := f.respond(s.Context())
		out := &ingesterv1.PushStreamResponse{Response: resp}
		if err != nil {
			st := status.Convert(err)
			out = &ingesterv1.PushStreamResponse{Code: uint32(st.Code()), Message: st.Message()}
		}
		if err := s.Send(out); err != nil {
			return err
		}
	}
}

// serveIngester serves f on addr ("127.0.0.1:0" for any port) until the
// returned stop is called (or the test ends).
func serveIngester(t *testing.T, addr string, f *streamIngester) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := grpc.NewServer()
	ingesterv1.RegisterIngesterServiceServer(srv, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Stop()
			<-done
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func pushReq() *ingesterv1.PushRequest {
	return &ingesterv1.PushRequest{Tenant: "t", Series: []byte("opaque to the transport")}
}

// TestPushStreams: pushes travel on streams kept per ingester, with each
// push's answer, error code included, and fall back to calls where the
// ingester is older.
func TestPushStreams(t *testing.T) {
	type answer = func(ctx context.Context, n int32) (*ingesterv1.PushResponse, error)
	for name, tc := range map[string]struct {
		noStreams bool
		answer    answer
		pushes    int
		// each push's expected code, in order (OK when shorter)
		codes                   []codes.Code
		calls, attempts, opened int32
	}{
		"pushes share one stream": {
			pushes: 5, attempts: 1, opened: 1,
		},
		"an answered error keeps its code and the stream serves the next push": {
			answer: func(_ context.Context, n int32) (*ingesterv1.PushResponse, error) {
				if n == 1 {
					return nil, status.Error(codes.ResourceExhausted, "ingester applies backpressure")
				}
				return &ingesterv1.PushResponse{SamplesWritten: 1}, nil
			},
			pushes: 3, codes: []codes.Code{codes.ResourceExhausted}, attempts: 1, opened: 1,
		},
		"an older ingester is pushed to with calls, and asked for a stream once": {
			noStreams: true,
			pushes:    4, calls: 4, attempts: 1,
		},
		"a push past its deadline ends its stream; the next push opens another": {
			answer: func(ctx context.Context, n int32) (*ingesterv1.PushResponse, error) {
				if n == 1 {
					<-ctx.Done() // held until the distributor gives up
					return nil, ctx.Err()
				}
				return &ingesterv1.PushResponse{SamplesWritten: 1}, nil
			},
			pushes: 2, codes: []codes.Code{codes.DeadlineExceeded}, attempts: 2, opened: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := &streamIngester{noStreams: tc.noStreams, answer: tc.answer}
			addr, _ := serveIngester(t, "127.0.0.1:0", f)
			clients := NewClients(Config{MaxSendMsgSize: 1 << 20})
			defer clients.Close()
			for i := range tc.pushes {
				want := codes.OK
				if i < len(tc.codes) {
					want = tc.codes[i]
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if want == codes.DeadlineExceeded {
					cancel()
					ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
				}
				resp, err := push(ctx, clients, addr)
				cancel()
				require.Equal(t, want, status.Code(err), "push %d: %v", i, err)
				if want == codes.OK {
					require.Equal(t, int64(1), resp.GetSamplesWritten(), "push %d", i)
				} else if want == codes.ResourceExhausted {
					require.Contains(t, status.Convert(err).Message(), "backpressure", "the ingester's message reaches the distributor")
				}
			}
			require.Equal(t, tc.calls, f.calls.Load(), "unary calls")
			require.Equal(t, tc.attempts, f.attempts.Load(), "streams asked for")
			require.Equal(t, tc.opened, f.opened.Load(), "streams served")
		})
	}
}

// TestPushStreamAfterIngesterRestart: the streams kept to an ingester that
// restarted have ended; the next push goes on a new one, not lost to them.
func TestPushStreamAfterIngesterRestart(t *testing.T) {
	first := &streamIngester{}
	addr, stop := serveIngester(t, "127.0.0.1:0", first)
	clients := NewClients(Config{MaxSendMsgSize: 1 << 20})
	defer clients.Close()
	_, err := push(context.Background(), clients, addr)
	require.NoError(t, err)
	conn, err := clients.conn(addr)
	require.NoError(t, err)
	stop()

	second := &streamIngester{}
	serveIngester(t, addr, second)
	// Once the connection is back, its old transport (and the idle stream
	// on it) is known to have ended.
	require.Eventually(t, func() bool {
		if conn.GetState() == connectivity.Ready {
			return true
		}
		conn.Connect()
		return false
	}, 10*time.Second, 10*time.Millisecond)
	resp, err := push(context.Background(), clients, addr)
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.GetSamplesWritten())
	require.Equal(t, int32(1), second.opened.Load())
}

// TestPushStreamsClosed: Close ends the idle streams (goleak checks their
// goroutines) and later pushes fail.
func TestPushStreamsClosed(t *testing.T) {
	f := &streamIngester{}
	addr, _ := serveIngester(t, "127.0.0.1:0", f)
	clients := NewClients(Config{MaxSendMsgSize: 1 << 20})
	for range 3 {
		_, err := push(context.Background(), clients, addr)
		require.NoError(t, err)
	}
	clients.Close()
	_, err := push(context.Background(), clients, addr)
	require.Error(t, err)
	require.Equal(t, int32(3), f.pushes.Load())
}

// TestPushStreamsCloseIdle: streams idle for longer than the timeout are
// closed (an ingester that stops waits for its streams to end); those
// used since stay.
func TestPushStreamsCloseIdle(t *testing.T) {
	f := &streamIngester{}
	addr, _ := serveIngester(t, "127.0.0.1:0", f)
	clients := NewClients(Config{MaxSendMsgSize: 1 << 20})
	defer clients.Close()
	now := time.Unix(1000, 0)
	clients.streams.now = func() time.Time { return now }
	_, err := push(context.Background(), clients, addr)
	require.NoError(t, err)

	clients.streams.closeIdle(now) // given back at now: not before it
	require.Len(t, clients.streams.idle[addr], 1)
	now = now.Add(streamIdleTimeout + time.Second)
	clients.streams.closeIdle(now.Add(-streamIdleTimeout))
	require.Empty(t, clients.streams.idle[addr])
	require.Eventually(t, func() bool { return f.ended.Load() == 1 }, 10*time.Second, 5*time.Millisecond,
		"the ingester sees the stream end")

	_, err = push(context.Background(), clients, addr)
	require.NoError(t, err, "the next push opens a stream")
	require.Equal(t, int32(2), f.opened.Load())
}

// push sends one push to the ingester at addr and waits for its answer, as
// a request does with each of its pushes.
func push(ctx context.Context, clients *Clients, addr string) (*ingesterv1.PushResponse, error) {
	return clients.Send(ctx, addr, pushReq()).Wait(ctx)
}
