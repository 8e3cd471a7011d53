package distributor

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// maxIdleStreams bounds the idle PushStreams kept per ingester: one per
// push in flight at the busiest moment, up to this; more are closed when
// their push is answered.
const maxIdleStreams = 64

// streamIdleTimeout is how long a PushStream may wait unused before Run
// closes it, so that the streams to an ingester that no longer owns series
// end within this (a stopping ingester closes what is left itself, once
// its pushes in flight are answered).
const streamIdleTimeout = 2 * time.Second

// unaryFor is how long a distributor pushes with the unary Push to an
// ingester whose PushStream answered UNIMPLEMENTED (an older version)
// before it tries the stream again.
const unaryFor = time.Minute

// pushStreams keeps the idle PushStreams to each ingester. A push takes an
// idle stream (or opens one), sends its batch, waits for the answer and
// gives the stream back, so a push costs one message each way instead of a
// call: no new HTTP/2 stream, headers, trailers or handler goroutine. Safe
// for concurrent use.
type pushStreams struct {
	ctx    context.Context // every stream's parent; cancelled by close
	cancel context.CancelFunc

	mu    sync.Mutex
	idle  map[string][]*pushStream
	unary map[string]time.Time // ingesters that answered UNIMPLEMENTED, until when
	now   func() time.Time
}

func newPushStreams() *pushStreams {
	ctx, cancel := context.WithCancel(context.Background())
	return &pushStreams{ctx: ctx, cancel: cancel, idle: map[string][]*pushStream{}, unary: map[string]time.Time{}, now: time.Now}
}

// pushStream is one PushStream, used by one push at a time.
type pushStream struct {
	s      ingesterv1.IngesterService_PushStreamClient
	conn   *grpc.ClientConn // the connection it runs on
	cancel context.CancelFunc
	idle   time.Time // when it was last given back
}

// send sends req to the ingester at addr over conn on a stream and returns
// the push in flight; its Wait reads the answer. For an ingester without
// PushStream nothing is sent: Wait makes the unary call.
func (p *pushStreams) send(ctx context.Context, conn *grpc.ClientConn, addr string, req *ingesterv1.PushRequest) *sentPush {
	sp := &sentPush{p: p, conn: conn, addr: addr, req: req}
	if p.useUnary(addr) {
		sp.unary = true
		return sp
	}
	sp.start(ctx)
	return sp
}

// sentPush is a push sent on a stream whose answer is not read yet. Its
// Wait is called once, by the goroutine that sent it.
type sentPush struct {
	p      *pushStreams
	conn   *grpc.ClientConn
	addr   string
	req    *ingesterv1.PushRequest
	unary  bool        // the ingester does not serve PushStream
	st     *pushStream // nil: no stream could be had (err)
	reused bool        // st was idle before this push
	stop   func() bool // ends st's cancellation by the push's ctx
	err    error       // the failure of getting st or of sending on it
}

var _ PendingPush = (*sentPush)(nil)

// start takes a stream (an idle one, or a new one) and sends the push.
func (sp *sentPush) start(ctx context.Context) {
	sp.st, sp.reused, sp.err = sp.p.get(sp.conn, sp.addr)
	if sp.err == nil {
		sp.stop, sp.err = sp.st.send(ctx, sp.req)
	}
}

// Wait reads the push's answer and gives its stream back. The rare
// paths, a push that goes again on a new stream and a unary call, run here
// in full.
func (sp *sentPush) Wait(ctx context.Context) (*ingesterv1.PushResponse, error) {
	if sp.unary {
		return ingesterv1.NewIngesterServiceClient(sp.conn).Push(ctx, sp.req)
	}
	for retried := false; ; retried = true {
		if sp.st == nil {
			return nil, sp.err
		}
		var resp *ingesterv1.PushResponse
		err := sp.err
		if err == nil {
			resp, err = sp.st.await(ctx, sp.stop)
		}
		switch {
		case err == nil:
			sp.p.put(sp.addr, sp.st)
			return resp, nil
		case errors.Is(err, errAnswered):
			sp.p.put(sp.addr, sp.st) // the ingester answered; the stream is fine
			return nil, err
		case sp.reused && !retried && ctx.Err() == nil && (errors.Is(err, errNotSent) || status.Code(err) == codes.Unavailable):
			// An idle stream whose connection ended while it waited (the
			// ingester restarted, the connection was replaced): the push
			// goes again, once, on a new stream. Had it reached the
			// ingester before the connection ended, it is written twice,
			// as when a sender retries after a lost answer: remote write
			// is at-least-once, and backends take an identical sample
			// again without complaint.
			sp.start(ctx)
			continue
		case errors.Is(err, errNotSent):
			return nil, status.Error(codes.Unavailable, err.Error())
		case status.Code(err) == codes.Unimplemented:
			// An older ingester: the stream was refused before any push
			// on it was read, so this one goes again, unary.
			sp.p.mu.Lock()
			sp.p.unary[sp.addr] = sp.p.now().Add(unaryFor)
			sp.p.mu.Unlock()
			return ingesterv1.NewIngesterServiceClient(sp.conn).Push(ctx, sp.req)
		default:
			return nil, err
		}
	}
}

func (p *pushStreams) useUnary(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.unary[addr]
	if ok && !p.now().Before(until) {
		delete(p.unary, addr)
		return false
	}
	return ok
}

// get takes an idle stream to addr on conn, or opens one; idle streams on
// another connection (one Run closed) are dropped.
func (p *pushStreams) get(conn *grpc.ClientConn, addr string) (st *pushStream, reused bool, err error) {
	p.mu.Lock()
	for len(p.idle[addr]) > 0 {
		l := p.idle[addr]
		st, p.idle[addr] = l[len(l)-1], l[:len(l)-1]
		if st.conn == conn {
			p.mu.Unlock()
			return st, true, nil
		}
		st.close()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(p.ctx)
	s, err := ingesterv1.NewIngesterServiceClient(conn).PushStream(ctx)
	if err != nil {
		cancel()
		return nil, false, err
	}
	return &pushStream{s: s, conn: conn, cancel: cancel}, false, nil
}

// put gives st back for the next push to addr, or closes it past the bound.
func (p *pushStreams) put(addr string, st *pushStream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[addr]) >= maxIdleStreams || p.ctx.Err() != nil {
		st.close()
		return
	}
	st.idle = p.now()
	p.idle[addr] = append(p.idle[addr], st)
}

// run closes the streams idle for longer than streamIdleTimeout, every
// half of it, until ctx ends.
func (p *pushStreams) run(ctx context.Context) {
	t := time.NewTicker(streamIdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.closeIdle(p.now().Add(-streamIdleTimeout))
		}
	}
}

// closeIdle closes the idle streams given back before cutoff. A list is
// oldest first (put appends, get takes the newest).
func (p *pushStreams) closeIdle(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, l := range p.idle {
		n := 0
		for n < len(l) && l[n].idle.Before(cutoff) {
			l[n].close()
			n++
		}
		if n == len(l) {
			delete(p.idle, addr)
			continue
		}
		p.idle[addr] = append(l[:0], l[n:]...)
	}
}

// close ends every stream, idle or in use.
func (p *pushStreams) close() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, l := range p.idle {
		for _, st := range l {
			st.close()
		}
		delete(p.idle, addr)
	}
}

func (st *pushStream) close() {
	_ = st.s.CloseSend()
	st.cancel()
}

var (
	// errNotSent marks a push whose stream had ended before it was sent.
	errNotSent = errors.New("push stream ended before the push was sent")
	// errAnswered marks an error the ingester answered on a working stream.
	errAnswered = errors.New("answered on the stream")
)

// send sends req on st. ctx bounds the push until await returns: when it
// ends first, the stream is cancelled (a late answer has nowhere to go);
// stop, for await, ends that. An error wraps errNotSent when nothing was
// sent; any other error ended the stream.
func (st *pushStream) send(ctx context.Context, req *ingesterv1.PushRequest) (stop func() bool, err error) {
	stop = context.AfterFunc(ctx, st.cancel)
	if err := st.s.Send(req); err != nil {
		stop()
		st.cancel()
		if errors.Is(err, io.EOF) {
			return nil, errNotSent
		}
		return nil, err
	}
	return stop, nil
}

// await reads the answer to the push send sent. An error wraps errAnswered
// when the ingester answered with it (the stream may be reused); any other
// error ended the stream.
func (st *pushStream) await(ctx context.Context, stop func() bool) (*ingesterv1.PushResponse, error) {
	r, err := st.s.Recv()
	if !stop() {
		st.cancel()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		st.cancel()
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.Unavailable, "the ingester closed the push stream")
		}
		return nil, err
	}
	if c := codes.Code(r.GetCode()); c != codes.OK {
		return nil, answeredError{status.New(c, r.GetMessage())}
	}
	return r.GetResponse(), nil
}

// answeredError is an ingester's answer to one push on a stream: its
// status (status.Code and status.Convert see it) and errAnswered.
type answeredError struct{ st *status.Status }

func (e answeredError) Error() string              { return e.st.Err().Error() }
func (e answeredError) GRPCStatus() *status.Status { return e.st }
func (e answeredError) Is(target error) bool       { return target == errAnswered }
