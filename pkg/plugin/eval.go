package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/promgov/promgov/pkg/plugin/abi"
)

// Name is the plugin's name.
func (p *Plugin) Name() string { return p.name }

// OnError is the action a failed batch gets.
func (p *Plugin) OnError() Action {
	if p.cfg.OnError == OnErrorDrop {
		return Drop
	}
	return Keep
}

// errClosed is the cause of KindClosed.
var errClosed = errors.New("the plugin is closed")

// Eval evaluates a batch and appends one verdict per series of in to
// out[:0], in order. On failure it returns an *Error and appends the
// on_error verdict (Keep or Drop, with a reason naming the plugin and the
// kind) for every series, so a caller may use the verdicts either way; the
// failure is counted and logged once. ctx bounds the batch together with
// the configured timeout (see acquire for a batch that starts an instance).
func (p *Plugin) Eval(ctx context.Context, in []Input, out []Verdict) ([]Verdict, error) {
	out = out[:0]
	if len(in) == 0 {
		return out, nil
	}
	start := time.Now()
	out, err := p.eval(ctx, in, out)
	var kind Kind
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			pe = &Error{Plugin: p.name, Kind: KindTrap, Err: err}
		}
		kind, err = pe.Kind, pe
		out = p.fallback(in, out[:0], kind)
		p.logger.Warn("plugin failed on a batch; applied on_error", "kind", kind, "series", len(in),
			"on_error", p.OnError().String(), "err", err)
	}
	p.metrics.call(len(in), time.Since(start), kind)
	return out, err
}

// fallback appends the on_error verdict for each series of in.
func (p *Plugin) fallback(in []Input, out []Verdict, kind Kind) []Verdict {
	v := Verdict{Action: p.OnError(), Reason: fmt.Sprintf("plugin %s failed (%s): on_error %s", p.name, kind, p.OnError())}
	for range in {
		out = append(out, v)
	}
	return out
}

func (p *Plugin) eval(ctx context.Context, in []Input, out []Verdict) ([]Verdict, error) {
	deadline := time.Now().Add(time.Duration(p.cfg.Timeout))
	inst, started, err := p.acquire(ctx, deadline)
	if err != nil {
		return out, err
	}
	if started {
		// The batch's own work gets its whole timeout after a start.
		deadline = time.Now().Add(time.Duration(p.cfg.Timeout))
	}
	bctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	out, err = p.call(bctx, inst, in, out)
	if err != nil {
		p.free <- struct{}{} // call closed inst
		return out, withBound(err, "timeout", time.Duration(p.cfg.Timeout))
	}
	p.idle <- inst
	return out, nil
}

// acquire takes an idle instance, waiting for one until deadline, or,
// when the pool has room and no instance is idle, starts one. A start
// (the first use of a slot, or the replacement of an instance a failure
// discarded) is a cost of the pool rather than of the batch: it is bounded
// by initTimeout, like the start at Load, so a slow start under load does
// not fail a batch that would otherwise be on time. started reports one.
func (p *Plugin) acquire(ctx context.Context, deadline time.Time) (inst *instance, started bool, err error) {
	select {
	case <-p.done:
		return nil, false, &Error{Plugin: p.name, Kind: KindClosed, Err: errClosed}
	default:
	}
	select {
	case inst := <-p.idle:
		return inst, false, nil
	default:
	}
	wait, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	select {
	case inst := <-p.idle:
		return inst, false, nil
	case <-p.free:
		bound := initTimeout(time.Duration(p.cfg.Timeout))
		sctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		inst, err := p.start(sctx)
		if err != nil {
			p.free <- struct{}{}
			return nil, false, withBound(err, "start timeout", bound)
		}
		return inst, true, nil
	case <-wait.Done():
		kind := KindCanceled
		if errors.Is(wait.Err(), context.DeadlineExceeded) {
			kind = KindTimeout
		}
		return nil, false, withBound(&Error{Plugin: p.name, Kind: kind, Err: fmt.Errorf("no free instance: %w", wait.Err())},
			"timeout", time.Duration(p.cfg.Timeout))
	case <-p.done:
		return nil, false, &Error{Plugin: p.name, Kind: KindClosed, Err: errClosed}
	}
}

// withBound names the bound a timeout ran into in err's message.
func withBound(err error, name string, bound time.Duration) error {
	var pe *Error
	if errors.As(err, &pe) && pe.Kind == KindTimeout {
		pe.Err = fmt.Errorf("%w (%s %s)", pe.Err, name, bound)
	}
	return err
}

// start starts and configures an instance within ctx.
func (p *Plugin) start(ctx context.Context) (*instance, error) {
	inst, err := p.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.configure(ctx, inst); err != nil {
		return nil, err
	}
	return inst, nil
}

// call runs one batch on inst. On error inst is closed.
func (p *Plugin) call(ctx context.Context, inst *instance, in []Input, out []Verdict) ([]Verdict, error) {
	inst.stderr.reset()
	inst.buf = encodeBatch(inst.buf[:0], in)
	ptr, err := inst.write(ctx, inst.buf)
	if err != nil {
		return out, p.failure(ctx, inst, KindTrap, err)
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(len(inst.buf))
	if err := inst.evaluate.CallWithStack(ctx, inst.stack); err != nil {
		return out, p.failure(ctx, inst, KindTrap, fmt.Errorf("%s: %w", abi.ExportEvaluate, err))
	}
	optr, olen := abi.Unpack(inst.stack[0])
	res, ok := inst.mem.Read(optr, olen)
	if !ok {
		return out, p.failure(ctx, inst, KindBadOutput, &Error{Kind: KindBadOutput, Err: fmt.Errorf(
			"%s returned %d bytes at %#x, outside its %d-byte memory", abi.ExportEvaluate, olen, optr, inst.mem.Size())})
	}
	n := len(out)
	out, err = decodeVerdicts(res, len(in), out, &inst.sb)
	if err != nil {
		return out[:n], p.failure(ctx, inst, KindBadOutput, &Error{Kind: KindBadOutput, Err: fmt.Errorf("%s: %w", abi.ExportEvaluate, err)})
	}
	return out, nil
}

// Close waits, up to ctx, for the Evals in flight and releases the runtime
// and every instance. Later Evals fail with KindClosed.
func (p *Plugin) Close(ctx context.Context) error {
	first := false
	p.closeOnce.Do(func() { first = true; close(p.done) })
	if !first {
		return nil
	}
wait:
	for range cap(p.idle) {
		select {
		case inst := <-p.idle:
			inst.close()
		case <-p.free:
		case <-ctx.Done():
			break wait
		}
	}
	ctx = context.WithoutCancel(ctx)
	err := closeRuntime(ctx, p.runtime, p.compiled)
	if p.loader != nil {
		err = errors.Join(err, p.loader.release(ctx))
	}
	return err
}
