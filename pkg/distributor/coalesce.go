package distributor

import (
	"context"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/record"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// A coalescer sends the parts concurrent requests have for the same
// ingester in as few Pushes as it can: at most maxInflight Pushes to one
// ingester are in flight; a part that arrives while they are waits, and
// when one returns, the parts that waited meanwhile (of one tenant, up to
// maxBytes) leave together in the next one. It is group commit one hop
// earlier: under load every push carries more, so the fixed cost of a
// push — a gRPC call on both sides, a WAL record, a wake-up of each
// goroutine involved — is paid once for several requests, and at low load
// nothing waits (a part finds a free slot and leaves at once).
//
// The ingester governs each part as if it had come alone and answers each
// (PushRequest.part_ends, PushResponse.parts), so every request still gets
// its own counts and refusals. No goroutine is started: the request whose
// part is first in a group sends it (its leader), and hands the next group
// to the first part still waiting before it returns.
//
// A coalescer is safe for concurrent use.
type coalescer struct {
	pusher      Pusher
	maxInflight int // Pushes in flight per ingester; 0: no coalescing
	maxBytes    int // largest coalesced batch
	timeout     time.Duration
	observe     func(code string, seconds float64, parts int)

	mu     sync.Mutex
	queues map[string]*pushQueue // by gRPC address
	joined sync.Pool             // *[]byte: coalesced batches
}

// pushQueue is one ingester's: guarded by coalescer.mu.
type pushQueue struct {
	inflight int
	waiting  []*pending
}

// pending is one part waiting for, or travelling in, a Push.
type pending struct {
	tenant   string
	batch    []byte
	metadata []*ingesterv1.MetricMetadata

	// Set under coalescer.mu.
	taken bool       // in a group: no longer in waiting
	group []*pending // set on the part that leads its group

	// done is closed when the part leads a group (group != nil) or when
	// resp and err are set.
	done chan struct{}
	resp *ingesterv1.PushResponse
	err  error
}

// newCoalescer builds a coalescer; observe is called after every Push with
// its gRPC status code, duration and number of parts.
func newCoalescer(pusher Pusher, cfg Config, observe func(code string, seconds float64, parts int)) *coalescer {
	return &coalescer{
		pusher: pusher, maxInflight: cfg.MaxPushesInFlightPerIngester,
		maxBytes: cfg.MaxSendMsgSize / 2, timeout: cfg.PushTimeout, observe: observe,
		queues: make(map[string]*pushQueue),
	}
}

// push sends p to the ingester at addr, alone or with others, and returns
// the ingester's answer to p. When ctx ends before p leaves, p does not
// leave and push returns ctx's error; once p has left (or leads a group),
// the Push runs to its own deadline whatever ctx does, since it carries
// other requests' parts too.
func (c *coalescer) push(ctx context.Context, addr string, p *pending) (*ingesterv1.PushResponse, error) {
	if c.maxInflight <= 0 {
		c.send(ctx, addr, []*pending{p})
		return p.resp, p.err
	}
	// A Push may carry other requests' parts: it is not cancelled with
	// this one.
	pushCtx := context.WithoutCancel(ctx)
	c.mu.Lock()
	q := c.queues[addr]
	if q == nil {
		q = &pushQueue{}
		c.queues[addr] = q
	}
	if q.inflight < c.maxInflight {
		q.inflight++
		group := c.takeLocked(q, p)
		c.mu.Unlock()
		c.lead(pushCtx, addr, q, group)
		return p.resp, p.err
	}
	p.done = make(chan struct{})
	q.waiting = append(q.waiting, p)
	c.mu.Unlock()

	select {
	case <-p.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !p.taken {
			q.waiting = slices.DeleteFunc(q.waiting, func(w *pending) bool { return w == p })
			c.mu.Unlock()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		lead := p.group != nil
		c.mu.Unlock()
		if !lead {
			// p travels in another request's Push; that request's
			// answer no longer matters to this one.
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		<-p.done // closed with group set
	}
	if p.group != nil {
		c.lead(pushCtx, addr, q, p.group)
	}
	return p.resp, p.err
}

// waiting returns how many parts wait for a Push slot, over all ingesters.
func (c *coalescer) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, q := range c.queues {
		n += len(q.waiting)
	}
	return n
}

// takeLocked forms the next group for q: first (nil: the first waiting
// part) and the waiting parts of its tenant that fit in maxBytes, in
// arrival order. Parts of other tenants keep their places.
func (c *coalescer) takeLocked(q *pushQueue, first *pending) []*pending {
	if first == nil {
		first, q.waiting = q.waiting[0], q.waiting[1:]
	}
	first.taken = true
	group := []*pending{first}
	size := len(first.batch)
	kept := q.waiting[:0]
	for _, w := range q.waiting {
		if w.tenant == first.tenant && size+len(w.batch) <= c.maxBytes {
			w.taken = true
			group = append(group, w)
			size += len(w.batch)
			continue
		}
		kept = append(kept, w)
	}
	clear(q.waiting[len(kept):])
	q.waiting = kept
	return group
}

// lead sends group (led by its first part), answers its other parts, and
// hands the next group of q to its leader, or frees the slot.
func (c *coalescer) lead(ctx context.Context, addr string, q *pushQueue, group []*pending) {
	c.send(ctx, addr, group)
	for _, p := range group[1:] {
		close(p.done)
	}
	c.mu.Lock()
	if len(q.waiting) == 0 {
		q.inflight--
		c.mu.Unlock()
		return
	}
	next := c.takeLocked(q, nil)
	next[0].group = next
	c.mu.Unlock()
	close(next[0].done)
}

// send pushes group as one Push and sets every part's answer.
func (c *coalescer) send(ctx context.Context, addr string, group []*pending) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	first := group[0]
	req := &ingesterv1.PushRequest{Tenant: first.tenant, Series: first.batch, Metadata: first.metadata}
	var joined *[]byte
	if len(group) > 1 {
		joined = c.join(req, group)
	}
	start := time.Now()
	resp, err := c.pusher.Push(ctx, addr, req)
	c.observe(status.Code(err).String(), time.Since(start).Seconds(), len(group))
	if joined != nil && err == nil {
		// On error the transport may still hold the batch; it is not reused.
		c.joined.Put(joined)
	}
	if err != nil {
		for _, p := range group {
			p.err = err
		}
		return
	}
	if len(group) == 1 {
		first.resp = resp
		return
	}
	if len(resp.GetParts()) != len(group) {
		// An ingester that predates part_ends wrote the batch as one.
		answerWhole(group, resp)
		return
	}
	for i, p := range group {
		p.resp = resp.GetParts()[i]
	}
}

// join makes req carry every part of group: their batches concatenated
// (into a pooled buffer, returned) with their ends, and their metadata.
func (c *coalescer) join(req *ingesterv1.PushRequest, group []*pending) *[]byte {
	buf, _ := c.joined.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b := (*buf)[:0]
	req.PartEnds = make([]uint32, len(group))
	req.Metadata = nil
	for i, p := range group {
		b = append(b, p.batch...)
		req.PartEnds[i] = uint32(len(b))
		req.Metadata = append(req.Metadata, p.metadata...)
	}
	*buf = b
	req.Series = b
	return buf
}

// answerWhole answers the parts of a coalesced Push from an ingester that
// did not answer them one by one: each part's counts are what it carried,
// and a refusal, which cannot be placed, is reported to every part.
func answerWhole(group []*pending, resp *ingesterv1.PushResponse) {
	for _, p := range group {
		r := &ingesterv1.PushResponse{RefusedSeries: resp.GetRefusedSeries(), RefusedMessage: resp.GetRefusedMessage()}
		it := record.NewIter(p.batch)
		for it.Next() {
			e := it.Entry()
			r.SamplesWritten += int64(e.Samples)
			r.HistogramsWritten += int64(e.Histograms)
			r.ExemplarsWritten += int64(e.Exemplars)
		}
		p.resp = r
	}
}
