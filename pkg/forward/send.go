package forward

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/promgov/promgov/pkg/record"
)

// loadStats is what the shards did since the scaler last looked.
type loadStats struct {
	in   atomic.Int64 // elements handed to the shards
	out  atomic.Int64 // elements the backend answered for (written or refused)
	busy atomic.Int64 // nanoseconds spent in sends that got such an answer
}

// take returns and resets the counters.
func (l *loadStats) take() (in, out int64, busy time.Duration) {
	return l.in.Swap(0), l.out.Swap(0), time.Duration(l.busy.Swap(0))
}

// sendWithRetry sends p until it is written, dropped as non-recoverable, or
// ctx (the flush deadline) ends. Every attempt passes the Forwarder's gate,
// so while the backend fails only one request at a time reaches it.
func (f *Forwarder) sendWithRetry(ctx context.Context, p *pendingRequest) {
	send := f.sendFunc(p)
	for attempt := 0; ; attempt++ {
		t, err := f.gate.pass(ctx)
		if err != nil {
			f.drop(p, "shutdown", nil)
			return
		}
		start := time.Now()
		err = send(ctx)
		elapsed := time.Since(start)
		var pe *PartialWriteError
		switch {
		case err == nil:
			f.gate.done(t, outcomeWritten, 0)
			f.answered(p, elapsed)
			f.m.sendDuration.WithLabelValues("success").Observe(elapsed.Seconds())
			f.m.sentSamples.Add(float64(p.samples))
			f.m.sentHistograms.Add(float64(p.histograms))
			f.m.sentExemplars.Add(float64(p.exemplars))
			f.m.sentMetadata.Add(float64(len(p.meta)))
			f.release(p.count())
			f.settle(p)
			if attempt > 0 {
				f.logger.Info("batch sent after retries", "tenant", p.tenant, "attempts", attempt+1)
			}
			return
		case errors.As(err, &pe):
			// Written in part: what was written counts as sent, the rest
			// as dropped, exactly as the backend's headers say.
			if pe.Err == nil {
				f.gate.done(t, outcomeWritten, 0)
			} else {
				f.gate.done(t, outcomeRefused, 0)
			}
			f.answered(p, elapsed)
			f.m.sendDuration.WithLabelValues("dropped").Observe(elapsed.Seconds())
			f.m.sentSamples.Add(float64(pe.Written.Samples))
			f.m.sentHistograms.Add(float64(pe.Written.Histograms))
			f.m.sentExemplars.Add(float64(pe.Written.Exemplars))
			f.m.sentMetadata.Add(float64(len(p.meta)))
			f.m.dropped.WithLabelValues(dropReason(err)).Add(float64(pe.Dropped()))
			f.release(p.count())
			f.settle(p)
			f.logger.Warn("backend wrote part of a batch; the rest is dropped", "tenant", p.tenant,
				"reason", dropReason(err), "written", pe.Written.Total(), "dropped", pe.Dropped(), "err", err)
			return
		case IsRecoverable(err) && ctx.Err() == nil:
			ra := retryAfter(err)
			f.gate.done(t, outcomeFailed, ra)
			f.m.sendDuration.WithLabelValues("recoverable").Observe(elapsed.Seconds())
			f.m.retries.Inc()
			if attempt == 0 {
				f.logger.Warn("sending batch failed, retrying with backoff", "tenant", p.tenant, "samples", p.count(), "err", err)
			}
		default:
			o := outcomeRefused
			var he *HTTPError
			if !errors.As(err, &he) {
				o = outcomeNone // no answer from the backend (invalid batch, shutdown)
			}
			f.gate.done(t, o, 0)
			if o == outcomeRefused {
				f.answered(p, elapsed)
			}
			f.m.sendDuration.WithLabelValues("dropped").Observe(elapsed.Seconds())
			reason := dropReason(err)
			if ctx.Err() != nil {
				reason = "shutdown"
			} else if he != nil && f.isolate(ctx, p, he) {
				return // only the series the backend refused are dropped
			}
			f.drop(p, reason, err)
			return
		}
	}
}

// sendFunc returns how to send p: as it is to a BatchSender, else converted
// once to the generated types.
func (f *Forwarder) sendFunc(p *pendingRequest) func(context.Context) error {
	if bs, ok := f.sender.(BatchSender); ok {
		return func(ctx context.Context) error { return bs.SendBatch(ctx, p.tenant, p.batch, p.counts(), p.meta) }
	}
	req, _, err := record.ToV2Request(p.batch, nil)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrInvalidBatch, err)
		return func(context.Context) error { return err }
	}
	return func(ctx context.Context) error { return f.sender.Send(ctx, p.tenant, req, p.meta) }
}

// answered records, for the shard scaler, that the backend answered for p
// after elapsed.
func (f *Forwarder) answered(p *pendingRequest, elapsed time.Duration) {
	f.load.out.Add(int64(p.count()))
	f.load.busy.Add(int64(elapsed))
}

// drop discards p, counting it under reason and logging once.
func (f *Forwarder) drop(p *pendingRequest, reason string, err error) {
	n := p.count()
	if reason == "shutdown" {
		// Summarised by Run. With a WAL nothing is lost: the records stay
		// uncommitted and are sent again on the next start.
		f.release(n)
		f.shutdownDropped.Add(int64(n))
		if !f.durable {
			f.m.dropped.WithLabelValues(reason).Add(float64(n))
		}
		return
	}
	f.m.dropped.WithLabelValues(reason).Add(float64(n))
	f.release(n)
	f.settle(p)
	f.logger.Warn("batch dropped", "tenant", p.tenant, "reason", reason, "samples", n, "metadata", len(p.meta), "err", err)
}
