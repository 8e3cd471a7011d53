package rules

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/plugin/abi"
)

// pluginRule is a rule of kind plugin: a WebAssembly module
// (pkg/plugin, docs/plugins.md) whose verdict per series is the rule's
// action. It is a BatchStage: the engine's batch entry points ask it about
// a batch of series in one plugin call (EvalBatch), Apply one series at a
// time (Eval, a batch of one). What makes it cheap in steady state is that
// its verdicts are remembered like every rule's outcome (the engine's cache
// of untouched series and the distributor's series cache), so a repeat
// series does not cross into the sandbox again. A verdict that came from
// on_error (a trap, a timeout, bad output) is never remembered.
// Safe for concurrent use (the plugin pools its instances, the rule its
// buffers).
type pluginRule struct {
	p              *plugin.Plugin
	name, tagLabel string
	scratch        sync.Pool // *pluginScratch
}

var _ BatchStage = (*pluginRule)(nil)

type pluginScratch struct {
	in  []plugin.Input
	out []plugin.Verdict
}

func newPluginRule(p *plugin.Plugin, name, tagLabel string) *pluginRule {
	pr := &pluginRule{p: p, name: name, tagLabel: tagLabel}
	pr.scratch.New = func() any {
		return &pluginScratch{in: make([]plugin.Input, 0, 1), out: make([]plugin.Verdict, 0, 1)}
	}
	return pr
}

// Eval asks the plugin about one series (a batch of one).
func (pr *pluginRule) Eval(in *StageInput) StageVerdict {
	ps := pr.scratch.Get().(*pluginScratch)
	defer pr.scratch.Put(ps)
	ps.in = append(ps.in[:0], plugin.Input{Tenant: in.Tenant, Labels: in.Labels, Type: in.Meta.Type})
	out, err := pr.p.Eval(context.Background(), ps.in, ps.out[:0])
	ps.out = out
	ps.in[0] = plugin.Input{}
	if len(out) != 1 {
		return StageVerdict{Transient: true} // unreachable: Eval answers every series
	}
	return pr.verdict(in, &out[0], err != nil)
}

// EvalBatch asks the plugin about the series of ins in as few calls as
// the ABI allows (abi.MaxBatch series each; the engine's batches, at most
// MaxBatch, take one). The plugin's timeout bounds a call, so a batch
// rather than a series: a call that fails gets the on_error verdict for
// every series of it (Transient).
func (pr *pluginRule) EvalBatch(ins []*StageInput, out []StageVerdict) {
	ps := pr.scratch.Get().(*pluginScratch)
	defer pr.scratch.Put(ps)
	for len(ins) > 0 {
		n := min(len(ins), abi.MaxBatch)
		pr.evalChunk(ps, ins[:n], out[:n])
		ins, out = ins[n:], out[n:]
	}
}

func (pr *pluginRule) evalChunk(ps *pluginScratch, ins []*StageInput, out []StageVerdict) {
	ps.in = ps.in[:0]
	for _, in := range ins {
		ps.in = append(ps.in, plugin.Input{Tenant: in.Tenant, Labels: in.Labels, Type: in.Meta.Type})
	}
	vs, err := pr.p.Eval(context.Background(), ps.in, ps.out[:0])
	ps.out = vs
	clear(ps.in)
	for i, in := range ins {
		if len(vs) != len(ins) {
			out[i] = StageVerdict{Transient: true} // unreachable: Eval answers every series
			continue
		}
		out[i] = pr.verdict(in, &vs[i], err != nil)
	}
	clear(vs) // the pooled buffer keeps no labels alive
}

// verdict turns the plugin's verdict pv on the series in into the stage's;
// failed marks an on_error verdict.
func (pr *pluginRule) verdict(in *StageInput, pv *plugin.Verdict, failed bool) StageVerdict {
	ls := in.Labels
	switch pv.Action {
	case plugin.Drop:
		return StageVerdict{Action: ActionDrop, Reason: pluginReason(pr.name, pv.Reason), Transient: failed}
	case plugin.Rewrite:
		if labels.Equal(pv.Labels, ls) {
			return StageVerdict{Transient: failed}
		}
		v := StageVerdict{Action: ActionRewrite, Reason: pluginReason(pr.name, pv.Reason), Transient: failed}
		if in.WantLabels {
			v.Labels = pv.Labels
		}
		return v
	case plugin.Tag:
		lb := in.Builder
		lb.Reset(ls)
		if pv.Labels.IsEmpty() {
			lb.Set(pr.tagLabel, pr.name)
		} else {
			pv.Labels.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
		}
		out := lb.Labels()
		if labels.Equal(out, ls) { // already tagged: nothing would change
			return StageVerdict{Transient: failed}
		}
		v := StageVerdict{Action: ActionTag, Reason: pluginReason(pr.name, pv.Reason), Transient: failed}
		if in.WantLabels {
			v.Labels = out
		}
		return v
	default:
		return StageVerdict{Transient: failed}
	}
}

func pluginReason(rule, reason string) string {
	if reason == "" {
		return fmt.Sprintf("plugin %q", rule)
	}
	return reason
}

// pluginLoader loads the plugin of a rule. Compile's loads every plugin
// afresh and the engine owns them; a Manager's reuses the plugins of the
// previous ruleset whose module and configuration did not change.
type pluginLoader interface {
	load(name string, cfg plugin.Config) (*plugin.Plugin, error)
}

// freshLoader loads every plugin and remembers them so the engine can close
// them. Its plugins share compiled modules (two rules running one module
// compile it once); finish closes the plugin.Loader, which releases the
// compiled code once the engine has closed the plugins.
type freshLoader struct {
	metrics *plugin.Metrics
	logger  *slog.Logger
	shared  *plugin.Loader // created at the first plugin rule
	loaded  []*plugin.Plugin
}

func (l *freshLoader) load(name string, cfg plugin.Config) (*plugin.Plugin, error) {
	if l.shared == nil {
		l.shared = plugin.NewLoader(l.metrics, l.logger)
	}
	p, err := l.shared.Load(context.Background(), name, cfg)
	if err != nil {
		return nil, err
	}
	l.loaded = append(l.loaded, p)
	return p, nil
}

// finish closes the plugin.Loader: no more loads; its plugins keep running.
func (l *freshLoader) finish() {
	if l.shared != nil {
		_ = l.shared.Close(context.Background())
	}
}

// closeAll closes every plugin in ps, waiting at most until ctx is done for
// their batches in flight.
func closeAll(ctx context.Context, ps []*plugin.Plugin) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close(ctx))
	}
	return errors.Join(errs...)
}

// pluginKey identifies a loaded plugin for reuse across reloads: the rule
// name, its configuration and the module file's content.
type pluginKey struct {
	name   string
	cfg    string
	module [sha256.Size]byte
}

func keyOf(name string, cfg plugin.Config) (pluginKey, error) {
	b, err := plugin.ReadModule(context.Background(), cfg)
	if err != nil {
		return pluginKey{}, err
	}
	// The configuration as text: every field is comparable and printable.
	return pluginKey{name: name, cfg: fmt.Sprintf("%#v", cfg), module: sha256.Sum256(b)}, nil
}

// pluginSet is a Manager's loaded plugins. A reload reuses the plugins
// whose rule name, configuration and module content are unchanged, loads
// the others, and closes the ones the new ruleset no longer uses once it is
// active. Loading compiles the module, which takes up to a second, so the
// set's plugin.Loader shares compiled modules: a plugin whose configuration
// or name changed, or a second rule running a module already loaded, does
// not compile it again (the old plugin is still open while the new one
// loads). Reload and Close serialise its use (Manager.reloadMu).
type pluginSet struct {
	metrics *plugin.Metrics
	logger  *slog.Logger
	active  map[pluginKey]*plugin.Plugin
	// shared loads every plugin of the set; created at the first load
	// and closed, with the plugins, by close.
	shared *plugin.Loader
}

// reloadLoader loads for one reload; it records what the new ruleset uses.
type reloadLoader struct {
	set  *pluginSet
	used map[pluginKey]*plugin.Plugin
	// fresh are the plugins this reload loaded: closed if it fails.
	fresh []*plugin.Plugin
}

func (ps *pluginSet) loader() *reloadLoader {
	return &reloadLoader{set: ps, used: map[pluginKey]*plugin.Plugin{}}
}

func (l *reloadLoader) load(name string, cfg plugin.Config) (*plugin.Plugin, error) {
	key, err := keyOf(name, cfg)
	if err != nil {
		return nil, &plugin.Error{Plugin: name, Kind: plugin.KindInvalidModule, Err: err}
	}
	if p, ok := l.set.active[key]; ok {
		l.used[key] = p
		return p, nil
	}
	if l.set.shared == nil {
		l.set.shared = plugin.NewLoader(l.set.metrics, l.set.logger)
	}
	p, err := l.set.shared.Load(context.Background(), name, cfg)
	if err != nil {
		return nil, err
	}
	l.used[key] = p
	l.fresh = append(l.fresh, p)
	return p, nil
}

// abort closes what a failed reload loaded.
func (l *reloadLoader) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), pluginCloseTimeout)
	defer cancel()
	_ = closeAll(ctx, l.fresh)
}

// commit makes the reload's plugins the active set and closes the plugins
// no longer used, after waiting (bounded) for their batches in flight.
func (l *reloadLoader) commit() {
	var gone []*plugin.Plugin
	names := make(map[string]bool, len(l.used))
	for key := range l.used {
		names[key.name] = true
	}
	for key, p := range l.set.active {
		if _, ok := l.used[key]; !ok {
			gone = append(gone, p)
			if !names[key.name] {
				l.set.metrics.Forget(key.name)
			}
		}
	}
	l.set.active = l.used
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pluginCloseTimeout)
	defer cancel()
	if err := closeAll(ctx, gone); err != nil {
		l.set.logger.Warn("closing plugins a reload removed", "err", err)
	}
}

// close closes every active plugin and then the set's plugin.Loader, which
// releases the compiled modules. A later reload starts a new Loader.
func (ps *pluginSet) close(ctx context.Context) error {
	all := make([]*plugin.Plugin, 0, len(ps.active))
	for _, p := range ps.active {
		all = append(all, p)
	}
	ps.active = nil
	err := closeAll(ctx, all)
	if ps.shared != nil {
		err = errors.Join(err, ps.shared.Close(ctx))
		ps.shared = nil
	}
	return err
}

// pluginCloseTimeout bounds how long a reload waits for the batches in
// flight of the plugins it removes.
const pluginCloseTimeout = 5 * time.Second
