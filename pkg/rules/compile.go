package rules

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/promgov/promgov/pkg/rules/ruleconfig"
)

// rule is one compiled rule.
type rule struct {
	name     string
	kind     string
	kid      kindID
	mode     Mode
	action   Action
	tagLabel string
	tenants  []string
	matchers []*labels.Matcher

	relabel []relabelStep
	naming  *namingRule
	labels  *labelsRule
	limits  *limitsRule
	plugin  *pluginRule

	// stage decides; the fields above keep the built-in kinds' compiled
	// form for the engine's allocation-free pre-checks (probe, name cache).
	stage Stage
	// batch is stage when it is a BatchStage, else nil.
	batch BatchStage

	metrics ruleMetrics
}

// Compile validates cfg and builds an Engine. metrics may be nil (nothing is
// counted), which is what candidate rulesets of the test API use. Rules of
// kind plugin load their modules here (compile, start, self-test); the
// engine owns them and Close releases them.
func Compile(cfg Config, metrics *Metrics) (*Engine, error) {
	return compileOwned(cfg, metrics, NewRegistry())
}

// CompileWith is Compile with the rule kinds of kinds (NewRegistry plus
// any registered for this build).
func CompileWith(cfg Config, metrics *Metrics, kinds *Registry) (*Engine, error) {
	return compileOwned(cfg, metrics, kinds)
}

// compileOwned compiles an engine that owns the plugins it loads.
func compileOwned(cfg Config, metrics *Metrics, kinds *Registry) (*Engine, error) {
	l := &freshLoader{metrics: metrics.pluginMetrics(), logger: slog.New(slog.DiscardHandler)}
	defer l.finish()
	e, err := compile(cfg, metrics, kinds, l, nil)
	if err != nil {
		_ = closeAll(context.Background(), l.loaded)
		return nil, err
	}
	e.owned = l.loaded
	return e, nil
}

// compile is Compile with the kinds of reg, plugins loaded by l and the
// usage analysis u (nil: none).
func compile(cfg Config, metrics *Metrics, reg *Registry, l pluginLoader, u UsagePolicy) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	scheme, _ := cfg.Scheme()
	e := &Engine{scheme: scheme, cfg: cfg, metrics: metrics}
	e.scratchs.New = func() any { return newScratch() }
	for i := range cfg.Rules {
		rc := &cfg.Rules[i]
		r, err := compileRule(rc, scheme, cfg.DefaultTag(), metrics, reg, l, u)
		if err != nil {
			return nil, fmt.Errorf("%w: rules[%d] (%q): %w", ErrInvalidConfig, i, rc.Name, err)
		}
		e.rules = append(e.rules, r)
		if ls, ok := r.stage.(LiveStage); ok {
			e.live = append(e.live, ls)
		}
		e.hasBatch = e.hasBatch || r.batch != nil
	}
	e.names = newNameCache(e.rules)
	e.seen = &seriesCache{}
	return e, nil
}

func compileRule(rc *RuleConfig, scheme model.ValidationScheme, defaultTag string, metrics *Metrics, reg *Registry, l pluginLoader, u UsagePolicy) (*rule, error) {
	kind, _ := rc.Kind()
	k, ok := reg.Kind(kind)
	if !ok {
		return nil, fmt.Errorf("kind %q is not registered in this build", kind)
	}
	r := &rule{
		name:     rc.Name,
		kind:     kind,
		kid:      kindOther,
		mode:     rc.EffectiveMode(),
		action:   rc.Action,
		tagLabel: rc.TagLabel,
		tenants:  slices.Clone(rc.Scope.Tenants),
	}
	if r.tagLabel == "" {
		r.tagLabel = defaultTag
	}
	if rc.Scope.Selector != "" {
		ms, err := ruleconfig.ParseSelector(rc.Scope.Selector)
		if err != nil {
			return nil, fmt.Errorf("scope.selector: %w", err)
		}
		r.matchers = ms
	}
	st, err := k.New(rc, StageEnv{Scheme: scheme, TagLabel: r.tagLabel, Usage: u, plugins: l})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	r.stage = st
	r.batch, _ = st.(BatchStage)
	// The built-in stages' compiled form, for the pre-checks; the kid
	// follows the stage itself, so any other stage gets none.
	switch st := st.(type) {
	case *relabelStage:
		r.kid, r.relabel = kindRelabel, st.steps
	case *pluginRule:
		r.kid, r.plugin = kindPlugin, st
	case *checkStage:
		switch c := st.c.(type) {
		case namingChecker:
			r.kid, r.naming = kindNaming, c.namingRule
		case labelsChecker:
			r.kid, r.labels = kindLabels, c.labelsRule
		case limitsChecker:
			r.kid, r.limits = kindLimits, c.limitsRule
		}
	}
	r.metrics = metrics.forRule(r.name, r.mode, k.Actions(rc)...)
	return r, nil
}

// relabelStep is one relabel config plus a fast matcher for its regex, used
// only to prove that the config cannot change a series.
type relabelStep struct {
	cfg *relabel.Config
	// fm matches exactly like cfg.Regex (both anchor the expression the
	// same way) but short-cuts literals, alternations and prefixes.
	fm *labels.FastRegexMatcher
	// memo caches fm's results when fm is a slow (backtracking) regex; nil
	// otherwise.
	memo *matchMemo
	// replace remembers the outcome of a replace config per source value
	// (nil for the other actions).
	replace *replaceMemo
	// dropReason explains a drop by this config, rendered once.
	dropReason string
}

// matchSource reports whether the joined source value matches the regex.
func (st *relabelStep) matchSource(v string) bool {
	if st.memo != nil {
		return st.memo.match(v)
	}
	return st.fm.MatchString(v)
}

// compileRelabel copies and validates relabel configs with scheme.
func compileRelabel(cfgs []*relabel.Config, scheme model.ValidationScheme) ([]relabelStep, error) {
	out := make([]relabelStep, 0, len(cfgs))
	for i, c := range cfgs {
		cp, fm, err := ruleconfig.PrepareRelabel(c, scheme)
		if err != nil {
			return nil, fmt.Errorf("relabel_configs[%d]: %w", i, err)
		}
		st := relabelStep{cfg: &cp, fm: fm, memo: newMatchMemo(fm), dropReason: relabelDropReason(i, &cp)}
		if cp.Action == relabel.Replace {
			st.replace = &replaceMemo{cfg: st.cfg}
		}
		out = append(out, st)
	}
	return out, nil
}

// inScope reports whether the rule applies to the series viewed by v.
func (r *rule) inScope(tenant string, v *lview) bool {
	if len(r.tenants) > 0 && !slices.Contains(r.tenants, tenant) {
		return false
	}
	for _, m := range r.matchers {
		if !m.Matches(v.get(m.Name)) {
			return false
		}
	}
	return true
}

// eval runs the rule's stage on ls (which sc.view views). wantLabels asks
// for the resulting labels of rewrite and tag verdicts (not needed to only
// count a shadow hit).
func (r *rule) eval(ls labels.Labels, md *Metadata, sc *scratch, wantLabels bool) StageVerdict {
	if rs, ok := r.stage.(*relabelStage); ok {
		// The built-in relabel stage runs on the engine's scratch, whose
		// view already holds ls.
		return evalRelabel(rs.steps, ls, sc)
	}
	in := &sc.in
	in.Labels, in.Meta, in.WantLabels = ls, *md, wantLabels
	return r.stage.Eval(in)
}

// evalRelabel runs the relabel configs one by one through
// relabel.ProcessBuilder. Configs that provably cannot change the series
// (drop/keep/replace whose regex outcome means "do nothing") are skipped
// without touching the builder, which keeps untouched series allocation-free.
// sc.view must view ls.
func evalRelabel(steps []relabelStep, ls labels.Labels, sc *scratch) StageVerdict {
	sc.isSet = false
	for i := range steps {
		st := &steps[i]
		if st.noop(sc) {
			continue
		}
		// A drop or keep that is not a no-op drops the series: relabel
		// returns false exactly when noop found the regex outcome that
		// means "drop", so there is no need to load the builder.
		if st.cfg.Action == relabel.Drop || st.cfg.Action == relabel.Keep {
			return StageVerdict{Action: ActionDrop, Reason: st.dropReason}
		}
		if st.replace != nil {
			// Replace through its memo: read the source value before the
			// builder is loaded (both views hold the same labels).
			o := st.replace.outcome(st.sourceValue(sc))
			if o.skip {
				continue
			}
			if !sc.isSet {
				sc.lb.Reset(ls)
				sc.isSet = true
			}
			if o.value == "" {
				sc.lb.Del(o.target)
			} else {
				sc.lb.Set(o.target, o.value)
			}
			continue
		}
		if !sc.isSet {
			sc.lb.Reset(ls)
			sc.isSet = true
		}
		if !relabel.ProcessBuilder(sc.lb, st.cfg) {
			return StageVerdict{Action: ActionDrop, Reason: st.dropReason}
		}
	}
	if !sc.isSet {
		return StageVerdict{}
	}
	out := sc.lb.Labels()
	if labels.Equal(out, ls) {
		return StageVerdict{}
	}
	return StageVerdict{Action: ActionRewrite, Labels: out, Reason: "rewritten by relabel_configs"}
}

// noop reports whether the config certainly leaves the labels unchanged: a
// drop, keep or replace whose regex outcome means "do nothing", a lowercase
// or uppercase whose target already holds the result, or a labeldrop,
// labelkeep or labelmap whose regex selects no label to act on.
// Everything else goes through relabel.ProcessBuilder.
func (st *relabelStep) noop(sc *scratch) bool {
	cfg := st.cfg
	switch cfg.Action {
	case relabel.Drop, relabel.Keep, relabel.Replace:
		matched := st.matchSource(st.sourceValue(sc))
		if cfg.Action == relabel.Keep {
			return matched
		}
		return !matched
	case relabel.Lowercase:
		return sc.get(cfg.TargetLabel) == strings.ToLower(st.sourceValue(sc))
	case relabel.Uppercase:
		return sc.get(cfg.TargetLabel) == strings.ToUpper(st.sourceValue(sc))
	case relabel.LabelDrop, relabel.LabelMap:
		return !sc.anyName(st.fm, true)
	case relabel.LabelKeep:
		return !sc.anyName(st.fm, false)
	default:
		return false
	}
}

// sourceValue joins the source label values like relabel does. The result
// may alias sc.buf and is only valid until the next call.
func (st *relabelStep) sourceValue(sc *scratch) string {
	cfg := st.cfg
	switch len(cfg.SourceLabels) {
	case 0:
		return ""
	case 1:
		return sc.get(string(cfg.SourceLabels[0]))
	}
	buf := sc.buf[:0]
	for i, ln := range cfg.SourceLabels {
		if i > 0 {
			buf = append(buf, cfg.Separator...)
		}
		buf = append(buf, sc.get(string(ln))...)
	}
	sc.buf = buf
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// anyName reports whether some label name matches fm (want true) or does
// not match it (want false).
func (sc *scratch) anyName(fm *labels.FastRegexMatcher, want bool) bool {
	found := false
	check := func(l labels.Label) {
		if !found && fm.MatchString(l.Name) == want {
			found = true
		}
	}
	if sc.isSet {
		sc.lb.Range(check)
		return found
	}
	for _, l := range sc.view.ls {
		if fm.MatchString(l.Name) == want {
			return true
		}
	}
	return false
}

func relabelDropReason(i int, cfg *relabel.Config) string {
	switch cfg.Action {
	case relabel.Drop:
		return fmt.Sprintf("relabel_configs[%d]: action drop, source_labels [%s] matched regex %q", i, cfg.SourceLabels, cfg.Regex.String())
	case relabel.Keep:
		return fmt.Sprintf("relabel_configs[%d]: action keep, source_labels [%s] did not match regex %q", i, cfg.SourceLabels, cfg.Regex.String())
	default:
		return fmt.Sprintf("relabel_configs[%d]: action %s, source_labels [%s] vs target_label %q", i, cfg.Action, cfg.SourceLabels, cfg.TargetLabel)
	}
}
