package distributor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// pushCaller is what a coalescer calls: an ingester's data service over
// one connection (ingesterv1.IngesterServiceClient). Safe for concurrent
// use.
type pushCaller interface {
	Push(ctx context.Context, in *ingesterv1.PushRequest, opts ...grpc.CallOption) (*ingesterv1.PushResponse, error)
	PushParts(ctx context.Context, in *ingesterv1.PushPartsRequest, opts ...grpc.CallOption) (*ingesterv1.PushPartsResponse, error)
}

// coalescer merges the pushes a distributor makes to one ingester while
// that ingester is busy with earlier ones. At most maxInflight calls are
// in flight; a push that finds them all busy queues, and the next call to
// leave carries every push queued by then (up to maxParts and maxBytes) as
// one PushParts. An ingester pays a call's fixed costs (gRPC, its WAL's
// write and fsync, waking up) once per call, so under concurrent requests
// the calls, not the series, are what coalescing saves; an idle ingester
// gets every push at once, as before.
//
// There is no goroutine of its own: the caller whose push opens a call
// sends it (the leader) and, once answered, hands its slot to the first
// queued push, whose caller then sends the next call. Each caller gets
// exactly the answer its own push would have had (PushParts answers every
// part on its own). Safe for concurrent use.
type coalescer struct {
	client      pushCaller
	maxInflight int
	maxParts    int
	maxBytes    int
	timeout     time.Duration // of a call carrying several callers' pushes
	// partsCalls observes the parts per call (nil: not observed).
	observe func(parts int)

	// noParts is set once the ingester answered PushParts UNIMPLEMENTED
	// (an older version): every push then goes alone.
	noParts atomic.Bool

	mu       sync.Mutex
	inflight int
	queue    []*queuedPush
}

// queuedPush is one caller's push and, once answered, its answer.
type queuedPush struct {
	req  *ingesterv1.PushRequest
	resp *ingesterv1.PushResponse
	err  error
	// lead is set when the slot of a finished call passes to this push:
	// its caller sends the next call.
	lead bool
	done chan struct{} // capacity 1: answered, or lead
}

// push sends req to the ingester, alone or with others, and returns its
// own answer. ctx bounds the wait in the queue; once its push has left in a
// call, the caller waits for that call (bounded by its timeout).
func (c *coalescer) push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	me := &queuedPush{req: req, done: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.inflight < c.maxInflight {
		c.inflight++
		batch := c.takeLocked(me)
		c.mu.Unlock()
		c.lead(ctx, batch)
		return me.resp, me.err
	}
	c.queue = append(c.queue, me)
	c.mu.Unlock()

	select {
	case <-me.done:
	case <-ctx.Done():
		c.mu.Lock()
		for i, q := range c.queue {
			if q == me {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				c.mu.Unlock()
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
		c.mu.Unlock()
		<-me.done // taken into a call, or handed the lead: see it through
	}
	if me.lead {
		c.mu.Lock()
		batch := c.takeLocked(me)
		c.mu.Unlock()
		c.lead(ctx, batch)
	}
	return me.resp, me.err
}

// takeLocked returns first and the queued pushes after it that fit one
// call, removing them from the queue.
func (c *coalescer) takeLocked(first *queuedPush) []*queuedPush {
	batch := []*queuedPush{first}
	bytes := pushBytes(first.req)
	n := 0
	for _, q := range c.queue {
		b := pushBytes(q.req)
		if len(batch) >= c.maxParts || bytes+b > c.maxBytes {
			break
		}
		batch, bytes, n = append(batch, q), bytes+b, n+1
	}
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil // do not keep a long queue's array
	}
	return batch
}

func pushBytes(req *ingesterv1.PushRequest) int {
	return len(req.GetSeries()) + len(req.GetRequest())
}

// lead sends batch (batch[0] is the caller's own push), answers every push
// in it, and passes the call's slot on.
func (c *coalescer) lead(ctx context.Context, batch []*queuedPush) {
	if c.observe != nil {
		c.observe(len(batch))
	}
	if len(batch) == 1 {
		me := batch[0]
		me.resp, me.err = c.client.Push(ctx, me.req)
	} else {
		// The call carries other callers' pushes: the leader's own request
		// ending must not fail theirs.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		c.sendParts(callCtx, batch)
		cancel()
		for _, q := range batch[1:] {
			q.done <- struct{}{}
		}
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		next := c.queue[0]
		c.queue = c.queue[1:]
		next.lead = true
		c.mu.Unlock()
		next.done <- struct{}{}
		return
	}
	c.inflight--
	c.mu.Unlock()
}

// sendParts sends batch as one PushParts call (one Push per part to an
// ingester that does not know PushParts) and sets every part's answer.
func (c *coalescer) sendParts(ctx context.Context, batch []*queuedPush) {
	if !c.noParts.Load() {
		req := &ingesterv1.PushPartsRequest{Parts: make([]*ingesterv1.PushRequest, len(batch))}
		for i, q := range batch {
			req.Parts[i] = q.req
		}
		resp, err := c.client.PushParts(ctx, req)
		switch {
		case status.Code(err) == codes.Unimplemented:
			c.noParts.Store(true)
		case err != nil:
			for _, q := range batch {
				q.err = err
			}
			return
		case len(resp.GetResults()) != len(batch):
			err := status.Errorf(codes.Internal, "ingester answered %d results to %d parts", len(resp.GetResults()), len(batch))
			for _, q := range batch {
				q.err = err
			}
			return
		default:
			for i, r := range resp.GetResults() {
				if r.GetCode() != uint32(codes.OK) {
					batch[i].err = status.Error(codes.Code(r.GetCode()), r.GetMessage())
					continue
				}
				batch[i].resp = r.GetResponse()
				if batch[i].resp == nil {
					batch[i].resp = &ingesterv1.PushResponse{}
				}
			}
			return
		}
	}
	var wg sync.WaitGroup
	for _, q := range batch {
		wg.Go(func() { q.resp, q.err = c.client.Push(ctx, q.req) })
	}
	wg.Wait()
}

// coalescers keeps one coalescer per ingester address, for the
// connection it was made for. Safe for concurrent use.
type coalescers struct {
	cfg     CoalesceConfig
	timeout time.Duration
	observe func(parts int)

	mu sync.Mutex
	by map[string]*coalescerOf
}

type coalescerOf struct {
	conn *grpc.ClientConn
	c    *coalescer
}

// get returns the coalescer of addr over conn: a new one when conn is not
// the connection the last one was made for (the address was dialled
// again). Idle coalescers of other addresses are dropped once there are
// more than live connections (conns) allow, so departed ingesters leave
// nothing behind.
func (cs *coalescers) get(addr string, conn *grpc.ClientConn, conns int) *coalescer {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if e, ok := cs.by[addr]; ok && e.conn == conn {
		return e.c
	}
	if len(cs.by) > conns+8 {
		for a, e := range cs.by {
			if e.c.idle() {
				delete(cs.by, a)
			}
		}
	}
	c := &coalescer{
		client:      ingesterv1.NewIngesterServiceClient(conn),
		maxInflight: cs.cfg.MaxInflight,
		maxParts:    maxCoalescedParts,
		maxBytes:    cs.cfg.MaxBytes,
		timeout:     cs.timeout,
		observe:     cs.observe,
	}
	if cs.by == nil {
		cs.by = map[string]*coalescerOf{}
	}
	cs.by[addr] = &coalescerOf{conn: conn, c: c}
	return c
}

// maxCoalescedParts bounds the parts of one call.
const maxCoalescedParts = 256

func (c *coalescer) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight == 0 && len(c.queue) == 0
}

// CoalesceConfig configures how a distributor coalesces its pushes to one
// ingester (Config.Coalesce).
type CoalesceConfig struct {
	// MaxInflight is how many calls a distributor has in flight to one
	// ingester before further pushes queue for the next call; 0 sends
	// every push as its own call at once.
	MaxInflight int `yaml:"max_inflight_calls_per_ingester"`
	// MaxBytes bounds the batches one call carries; a single larger push
	// still goes, alone.
	MaxBytes int `yaml:"max_call_bytes"`
}

// Validate reports a configuration error naming the field and the fix.
func (c *CoalesceConfig) Validate() error {
	if c.MaxInflight < 0 {
		return fmt.Errorf("distributor.coalesce.max_inflight_calls_per_ingester: %d is negative; set 0 (no coalescing) or a positive bound", c.MaxInflight)
	}
	if c.MaxInflight > 0 && c.MaxBytes <= 0 {
		return fmt.Errorf("distributor.coalesce.max_call_bytes: %d; set a positive bound (the default is %d)", c.MaxBytes, DefaultCoalesceMaxBytes)
	}
	return nil
}

// Defaults of CoalesceConfig.
const (
	DefaultCoalesceMaxInflight = 2
	DefaultCoalesceMaxBytes    = 8 << 20
)
