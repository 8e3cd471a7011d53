package plugin

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestConcurrentEval: concurrent callers share the pool (never more
// instances than max_instances) and each gets its own batch's verdicts.
func TestConcurrentEval(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	p := loadT(t, "rt", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`, MaxInstances: 3}, m)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			var out []Verdict
			for i := range 30 {
				in := someInputs(1 + (g+i)%7)
				in[0].Labels = labels.FromStrings("__name__", "x", "team", "nobody")
				var err error
				out, err = p.Eval(context.Background(), in, out)
				if err != nil {
					errs <- err
					return
				}
				if len(out) != len(in) || out[0].Action != Drop || out[len(out)-1].Action != Keep && len(out) > 1 {
					errs <- errors.New("wrong verdicts")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.LessOrEqual(t, testutil.ToFloat64(m.instances.WithLabelValues("rt")), 3.0)
	require.Equal(t, 240.0, testutil.ToFloat64(m.calls.WithLabelValues("rt", "ok")))
}

// TestEvalAfterClose: Eval after Close fails with KindClosed and the
// on_error verdicts; Close is idempotent; an empty batch is no call.
func TestEvalAfterClose(t *testing.T) {
	p, err := Load(context.Background(), "rt", Config{Module: builder.Build(t, requireTeamPkg), Config: `{"teams":["core"]}`, OnError: OnErrorDrop}, nil, nil)
	require.NoError(t, err)
	out, err := p.Eval(context.Background(), nil, nil)
	require.NoError(t, err)
	require.Empty(t, out)
	require.NoError(t, p.Close(context.Background()))
	require.NoError(t, p.Close(context.Background()))
	out, err = p.Eval(context.Background(), someInputs(2), nil)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, KindClosed, pe.Kind)
	require.Equal(t, []Action{Drop, Drop}, []Action{out[0].Action, out[1].Action})
}

// TestEvalCanceled: a caller's context that ends first is KindCanceled.
func TestEvalCanceled(t *testing.T) {
	p := loadT(t, "loop", Config{Module: builder.Build(t, hostilePkg), Config: "loop"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Eval(ctx, someInputs(1), nil)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, KindCanceled, pe.Kind, "%v", err)
}
