package ingester

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/promgov/promgov/pkg/forward"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestPushesCostNoFlowControlFrames: pushes of tens of KiB on a stream
// cost the ingester no PING and no WINDOW_UPDATE of their own (fixed
// windows, pushWindowSize). With gRPC's default windows the ingester sent
// 41 PINGs (bandwidth estimation) and 144 WINDOW_UPDATEs for these 40
// pushes of 56 KiB; with fixed windows, none and 3.
func TestPushesCostNoFlowControlFrames(t *testing.T) {
	srv, _, _, _ := startServerWith(t, appendFunc(func(context.Context, forward.Batch) error { return nil }),
		Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 4 << 20}, nil)
	frames := &frameCounter{}
	conn, err := grpc.NewClient(srv.Addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return frames.watch(t, c), nil
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	const pushes = 40
	body := widePayload(t, 500)
	require.Greater(t, len(body), 48<<10, "a push of tens of KiB, as a distributor sends")
	s, err := ingesterv1.NewIngesterServiceClient(conn).PushStream(context.Background())
	require.NoError(t, err)
	for i := range pushes {
		require.NoError(t, s.Send(&ingesterv1.PushRequest{Tenant: "t", Request: body}))
		r, err := s.Recv()
		require.NoError(t, err)
		require.Equal(t, uint32(codes.OK), r.GetCode(), "push %d: %s", i, r.GetMessage())
	}
	require.NoError(t, s.CloseSend())
	_, err = s.Recv()
	require.ErrorIs(t, err, io.EOF)

	pings, updates := frames.counts()
	sent := pushes * len(body)
	require.Zero(t, pings, "PINGs the ingester sent for %d pushes", pushes)
	// One update per MiB of a stream's window received, and one per 4 MiB
	// of the connection's: 2 here, and a margin.
	require.LessOrEqual(t, updates, sent/(1<<20)+2, "WINDOW_UPDATEs the ingester sent for %d pushes of %d bytes", pushes, len(body))
}

// widePayload is a valid Remote Write 2.0 request of n series with long
// label values.
func widePayload(t *testing.T, n int) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for i := range n {
		ls := labels.FromStrings("__name__", "wide", "instance", fmt.Sprintf("%s-%06d", strings.Repeat("host", 20), i))
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

// frameCounter counts the HTTP/2 frames a server sends on the connections
// it watches: PINGs it starts (not its answers to the client's) and
// WINDOW_UPDATEs.
type frameCounter struct {
	mu             sync.Mutex
	pings, updates int
}

func (f *frameCounter) counts() (pings, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings, f.updates
}

// watch returns c, whose reads are also parsed as HTTP/2 frames.
func (f *frameCounter) watch(t *testing.T, c net.Conn) net.Conn {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fr := http2.NewFramer(io.Discard, pr)
		for {
			frame, err := fr.ReadFrame()
			if err != nil {
				_ = pr.CloseWithError(err) // unblocks the tee
				return
			}
			f.mu.Lock()
			switch fr := frame.(type) {
			case *http2.PingFrame:
				if !fr.IsAck() {
					f.pings++
				}
			case *http2.WindowUpdateFrame:
				f.updates++
			}
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = pw.Close()
		<-done
	})
	return &teeConn{Conn: c, w: pw}
}

// teeConn copies what it reads to w; once w fails it stops copying.
type teeConn struct {
	net.Conn
	w      *io.PipeWriter
	failed bool
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.failed {
		if _, werr := c.w.Write(p[:n]); werr != nil {
			c.failed = true
		}
	}
	return n, err
}
