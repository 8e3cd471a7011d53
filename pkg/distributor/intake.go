package distributor

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
)

// errNoIngesters is returned when the ring has no ACTIVE ingester.
var errNoIngesters = errors.New("no ACTIVE ingester in the ring; retry later")

// part is what one ingester receives from one request: its series as a
// batch of pkg/record entries, and family metadata.
type part struct {
	owner    ring.Member
	batch    []byte
	series   int
	metadata []prompb.MetricMetadata
}

// governance is what the intake needs to apply the rules and the usage
// drop policy; a nil *governance applies neither.
type governance struct {
	eng      *rules.Engine // nil: no rules
	types    *rules.TypeCache
	withMeta bool // some rule reads metadata
	// batch: some rule's stage is a BatchStage (a plugin), so the missed
	// series go through the engine in batches (resolveBatches).
	batch bool
	g     *governor
	stats ruleStats
	usage usageStats // what the usage.drop_unused rule dropped
}

// Kinds of seriesRec.
const (
	recGone uint8 = iota // rejected by validation: nothing to place
	recHit               // placed from the series cache
	recMiss              // placed from what the decoder made of it
)

// seriesRec is one series of the request on its way: found in the cache,
// or resolved by the decoder's path, in request order.
type seriesRec struct {
	kind uint8
	raw  []byte     // the series' field in the payload
	val  cacheValue // outcome, output labels (hit), placement, rule, message
	// hit: its sample fields are samples[samplesFrom:samplesTo]; extras and
	// meta say what else its entry carries.
	samplesFrom, samplesTo int32
	extras                 bool
	meta                   remotewrite.ScannedMeta
	// simple miss: keyed, with its cache key's hash.
	keyed   bool
	keyHash cacheKey
	// miss: its entries are missEntries[entFrom:entTo]; produced counts
	// the decoded series it gave.
	entFrom, entTo int32
	produced       int8
	counts         counts // what it carries
}

// counts are the elements of a series or request.
type counts struct{ samples, histograms, exemplars int }

func (c *counts) add(o counts) {
	c.samples += o.samples
	c.histograms += o.histograms
	c.exemplars += o.exemplars
}

func countsOf(ts *writev2.TimeSeries) counts {
	return counts{len(ts.Samples), len(ts.Histograms), len(ts.Exemplars)}
}

// missEntry is one entry the decoder's path wrote to intake.missBatch.
type missEntry struct{ off, end int32 }

// intake is one remote-write request from its payload to its parts: the
// series cache places the series seen before (pass 1), the decoder,
// validation and the rules handle the others (pass 2, filling the cache),
// and every series is then placed in request order (pass 3). Pooled; one
// request at a time.
type intake struct {
	d         *Distributor
	tenant    string
	proto     remotewrite.Protocol
	placement *ring.Placement
	gov       *governance
	gen       *cacheGen

	scanner     remotewrite.Scanner
	decoding    *remotewrite.DecodeBuffers // what the decoder made of the misses lives here until the next request
	recs        []seriesRec
	samples     [][]byte
	keys        []cacheKey // of the keyed series, in request order
	keyRecs     []int32    // their recs
	cands       []uint64   // their cache slots (probe)
	key         []byte     // the key being built
	misses      [][]byte
	missRecs    []int32
	sub         []byte
	missBatch   []byte
	missEntries []missEntry
	scratch     []byte
	sb          labels.ScratchBuilder
	ls          labels.Labels
	parts       []*part // by owner index; nil: no part for that owner yet
	spare       []*part // parts of earlier requests, their buffers kept
	metadata    []prompb.MetricMetadata
	metaMemo    map[string]rules.Metadata // type cache lookups of this request (withMeta)
	replays     []replay                  // rule effects of the hits (place)
	changes     []int                     // series changed, by rule index (place)

	// Outcome.
	rejected     int
	firstInvalid string
	sorted       int
	valid        int    // valid series (decoded form; a split 1.0 series counts twice)
	received     counts // elements of the valid series
}

type intakePool struct{ p sync.Pool }

func (ip *intakePool) get() *intake {
	if in, ok := ip.p.Get().(*intake); ok {
		return in
	}
	return &intake{sb: labels.NewScratchBuilder(16)}
}

// maxKeptBatch bounds the part buffers a pooled intake keeps, so that one
// huge request does not pin its memory.
const maxKeptBatch = 4 << 20

func (ip *intakePool) put(in *intake) {
	if in.gen != nil {
		in.gen.release() // not released after run (tests, benchmarks)
	}
	clear(in.recs)
	clear(in.samples)
	clear(in.misses)
	for _, p := range in.parts {
		if p != nil && cap(p.batch) <= maxKeptBatch {
			*p = part{batch: p.batch[:0]}
			in.spare = append(in.spare, p)
		}
	}
	clear(in.parts)
	in.scanner.Reset()
	*in = intake{
		scanner: in.scanner, decoding: in.decoding, recs: kept(in.recs), samples: kept(in.samples), keys: kept(in.keys),
		keyRecs: kept(in.keyRecs), cands: kept(in.cands), key: kept(in.key), misses: kept(in.misses), missRecs: kept(in.missRecs), sub: kept(in.sub),
		missBatch: kept(in.missBatch), missEntries: kept(in.missEntries), scratch: kept(in.scratch), sb: in.sb,
		parts: in.parts[:0], spare: in.spare, metaMemo: in.metaMemo, replays: in.replays[:0], changes: in.changes[:0],
	}
	clear(in.metaMemo)
	ip.p.Put(in)
}

// kept empties s for reuse, or drops it when a large request grew it past
// maxKeptBatch bytes, so that one burst does not pin its memory.
func kept[T any](s []T) []T {
	var zero T
	if uintptr(cap(s))*unsafe.Sizeof(zero) > maxKeptBatch {
		return nil
	}
	return s[:0]
}

// run reads payload into parts. The error is the decoder's (400, 413) or
// errNoIngesters.
func (in *intake) run(payload []byte) error {
	in.prepareParts()
	if in.gov != nil && in.gov.withMeta && in.proto == remotewrite.ProtocolV1 && remotewrite.HasMetadataV1(payload) {
		// The request's family metadata may change what the rules see of
		// its own series: it is remembered before they run.
		return in.decodeAll(payload)
	}
	if !in.scanner.Scan(in.d.decoder, in.proto, payload, in.scanned) {
		// Malformed or over a limit: the decoder names the problem.
		return in.decodeAll(payload)
	}
	in.lookup()
	if len(in.misses) > 0 || in.scanner.HasMetadata() {
		in.sub = in.scanner.SubRequest(in.sub[:0], in.proto, in.misses)
		if in.decoding == nil {
			in.decoding = &remotewrite.DecodeBuffers{}
		}
		dec, err := in.d.decoder.DecodePayloadWith(in.decoding, in.proto, in.sub, true)
		if err != nil {
			// The whole payload gives the error as it always read (series
			// indexes of the request, not of the subset).
			if _, errAll := in.d.decoder.DecodePayload(in.proto, payload, false); errAll != nil {
				return errAll
			}
			return err
		}
		in.absorb(dec)
	}
	return in.place()
}

// decodeAll takes every series of payload through the decoder's path.
func (in *intake) decodeAll(payload []byte) error {
	in.recs, in.samples, in.misses, in.missRecs = in.recs[:0], in.samples[:0], in.misses[:0], in.missRecs[:0]
	in.keys, in.keyRecs = in.keys[:0], in.keyRecs[:0]
	dec, err := in.d.decoder.DecodePayload(in.proto, payload, true)
	if err != nil {
		return err
	}
	n := 0
	for _, o := range dec.Origin {
		n = max(n, int(o)+1)
	}
	for i := range n {
		in.recs = append(in.recs, seriesRec{kind: recGone})
		in.missRecs = append(in.missRecs, int32(i))
	}
	in.absorb(dec)
	return in.place()
}

// prepareParts sizes the parts to the placement.
func (in *intake) prepareParts() {
	n := in.placement.NumIngesters()
	for range n {
		in.parts = append(in.parts, nil)
	}
}

// part returns the part of the owner of placement hash h.
func (in *intake) part(h uint64) (*part, error) {
	i := in.placement.OwnerIndexOfHash(h)
	if i < 0 {
		return nil, errNoIngesters
	}
	p := in.parts[i]
	if p == nil {
		if n := len(in.spare); n > 0 {
			p, in.spare = in.spare[n-1], in.spare[:n-1]
		} else {
			p = &part{}
		}
		p.owner = in.placement.Ingester(i)
		in.parts[i] = p
	}
	return p, nil
}

// placeHash is the hash of a series' placement key.
func (in *intake) placeHash(name string) uint64 {
	in.scratch = ring.Key(in.scratch[:0], in.tenant, "")
	in.scratch = append(in.scratch, name...)
	return xxhash.Sum64(in.scratch)
}

// keyOf builds the cache key of a simple series: tenant, the metadata the
// rules read (when they read any) and the labels as sent.
func (in *intake) keyOf(s *remotewrite.ScannedSeries) []byte {
	k := append(in.key[:0], in.tenant...)
	k = append(k, 0xff)
	if in.gov != nil && in.gov.withMeta {
		md := in.metadataOf(s)
		k = append(k, md.Type...)
		k = append(k, 0xff)
		k = append(k, md.Unit...)
		k = append(k, 0xff)
	}
	k = append(k, s.Key...)
	in.key = k
	return k
}

// metadataOf is what the rules know of a simple series' family, as
// governor.metadata finds it for a decoded one.
func (in *intake) metadataOf(s *remotewrite.ScannedSeries) rules.Metadata {
	if t := rules.TypeFromRW2(writev2.Metadata_MetricType(s.Meta.Type)); t != "" {
		return rules.Metadata{Type: t, Unit: string(s.Meta.Unit)}
	}
	if in.gov.types == nil {
		return rules.Metadata{}
	}
	name := record.MetricName(s.Key)
	if md, ok := in.metaMemo[string(name)]; ok {
		return md
	}
	if in.metaMemo == nil {
		in.metaMemo = make(map[string]rules.Metadata)
	}
	md, _ := in.gov.types.Lookup(in.tenant, string(name))
	in.metaMemo[string(name)] = md
	return md
}

// scanned is pass 1 for one series: a simple series is keyed for the
// cache lookup, the others wait for the decoder.
func (in *intake) scanned(s *remotewrite.ScannedSeries) {
	rec := seriesRec{kind: recMiss, raw: s.Raw}
	if s.Simple {
		rec.keyed, rec.keyHash = true, in.gen.hashKey(in.keyOf(s))
		rec.samplesFrom = int32(len(in.samples))
		in.samples = append(in.samples, s.Samples...)
		rec.samplesTo = int32(len(in.samples))
		rec.extras = s.StartTimestamps || s.Meta.Present()
		rec.meta = s.Meta
		in.keys = append(in.keys, rec.keyHash)
		in.keyRecs = append(in.keyRecs, int32(len(in.recs)))
	}
	in.recs = append(in.recs, rec)
}

// lookup ends pass 1: every keyed series of the request is looked up at
// once (their cache misses overlap), the hits take their values, and the
// rest wait for the decoder, in request order.
func (in *intake) lookup() {
	in.cands = slices.Grow(in.cands[:0], len(in.keys))[:len(in.keys)]
	in.gen.probe(in.keys, in.cands)
	hits := 0
	for i, c := range in.cands {
		if c == 0 {
			continue
		}
		rec := &in.recs[in.keyRecs[i]]
		if in.gen.value(c, in.keys[i], &rec.val) || in.gen.get(in.keys[i], &rec.val) {
			rec.kind = recHit
			rec.counts = counts{samples: int(rec.samplesTo - rec.samplesFrom)}
			hits++
		}
	}
	in.gen.record(len(in.keys), hits)
	in.d.m.cacheHits.Add(float64(hits))
	in.d.m.cacheMisses.Add(float64(len(in.keys) - hits)) // series not keyed are decoded without a lookup
	for i := range in.recs {
		if in.recs[i].kind == recMiss {
			in.missRecs = append(in.missRecs, int32(i))
			in.misses = append(in.misses, in.recs[i].raw)
		}
	}
}

// absorb is pass 2: what the decoder made of the missed series (validated,
// 1.0 converted) goes through the rules into entries, and the simple ones
// into the cache.
func (in *intake) absorb(dec *remotewrite.Decoded) {
	if in.d.rules != nil {
		// Remembered even while no rule needs it, so that a reload adding a
		// type-dependent rule finds the families already known.
		rememberTypes(in.d.types, in.tenant, dec)
	}
	in.rejected += dec.Rejected
	if in.firstInvalid == "" {
		in.firstInvalid = dec.FirstInvalid
	}
	in.sorted += dec.Sorted
	in.metadata = dec.Metadata
	for _, o := range dec.Origin {
		in.recs[in.missRecs[o]].produced++
	}
	// A 1.0 series with samples and histograms gave two series, the second
	// at the end: resolve each request series' decoded series together.
	order := make([]int, len(dec.Origin))
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(dec.Origin[a]) - int(dec.Origin[b]) })
	if in.gov != nil && in.gov.batch {
		in.resolveBatches(dec, order)
	} else {
		prev := int32(-1)
		for _, j := range order {
			rec := in.startRec(dec, j, &prev)
			in.resolve(rec, &dec.Request, &dec.Request.Timeseries[j])
		}
	}
	for _, ri := range in.missRecs {
		if in.recs[ri].produced == 0 {
			in.recs[ri].kind = recGone // invalid: counted in rejected
		}
	}
}

// startRec returns the rec of decoded series j (resolved in order), which
// starts its entries when its first decoded series comes (prev is the
// origin of the previous one).
func (in *intake) startRec(dec *remotewrite.Decoded, j int, prev *int32) *seriesRec {
	o := dec.Origin[j]
	rec := &in.recs[in.missRecs[o]]
	if o != *prev {
		rec.kind = recMiss
		rec.entFrom = int32(len(in.missEntries))
		rec.entTo = rec.entFrom
		*prev = o
	}
	rec.val.sorted = dec.WasSorted[j]
	return rec
}

// resolve runs the rules on one decoded series of rec and writes its entry.
func (in *intake) resolve(rec *seriesRec, req *writev2.Request, ts *writev2.TimeSeries) {
	res := rules.Result{Action: rules.Kept}
	var fx rules.Effects
	gov := in.gov
	if gov != nil && gov.eng != nil {
		name := remotewrite.MetricName(req, ts)
		res = gov.g.applyRecorded(gov.eng, gov.types, gov.withMeta, in.tenant, name, req, ts, &fx)
	}
	in.resolved(rec, req, ts, &res, &fx)
}

// resolved writes the entry of one decoded series of rec given what the
// rules made of it (res, with effects fx), and remembers a simple series
// in the cache. Kept labels may alias a reused buffer: they are used
// before the next series is resolved.
func (in *intake) resolved(rec *seriesRec, req *writev2.Request, ts *writev2.TimeSeries, res *rules.Result, fx *rules.Effects) {
	in.valid++
	c := countsOf(ts)
	in.received.add(c)
	rec.counts.add(c)
	gov := in.gov
	lbls := res.Labels
	if lbls.IsEmpty() {
		remotewrite.SeriesLabels(&in.sb, req, ts, &in.ls)
		lbls = in.ls
	}
	rec.val = cacheValue{fx: *fx, rule: -1, outcome: outcomeForward, sorted: rec.val.sorted}
	if res.Action != rules.Kept && gov != nil && gov.eng != nil {
		rec.val.rule = int16(gov.eng.RuleIndex(res.Rule))
	}
	if res.Action == rules.Dropped {
		rec.val.outcome = outcomeDropped
		rec.val.msg = fmt.Appendf(nil, "%s by rule %q: %s", res.Labels.String(), res.Rule, res.Reason)
	} else {
		rec.val.placeHash = in.placeHash(lbls.Get(model.MetricNameLabel))
		start := len(in.missBatch)
		in.missBatch, in.scratch = record.AppendV2(in.missBatch, in.scratch, lbls, ts, req.Symbols)
		in.missEntries = append(in.missEntries, missEntry{off: int32(start), end: int32(len(in.missBatch))})
		rec.entTo = int32(len(in.missEntries))
	}
	if rec.keyed && rec.produced == 1 && fx.Replayable() {
		in.remember(rec, lbls)
	}
}

// remember puts a resolved simple series in the cache.
func (in *intake) remember(rec *seriesRec, lbls labels.Labels) {
	v := rec.val
	if v.outcome == outcomeForward {
		v.out = record.AppendLabels(in.scratch[:0], lbls)
		v.outHash = lbls.Hash()
		if off, n, ok := record.FindLabel(v.out, model.MetricNameLabel); ok {
			v.nameOff, v.nameLen = off, n
		}
	}
	in.gen.put(rec.keyHash, &v)
}

// place is pass 3: every series, in request order, to its owner's part
// (or counted as dropped), and the family metadata by family name.
func (in *intake) place() error {
	gov := in.gov
	if gov != nil && gov.eng != nil {
		defer in.countRules()
	}
	for i := range in.recs {
		rec := &in.recs[i]
		if rec.kind == recGone {
			continue
		}
		if rec.kind == recHit {
			if gov != nil && gov.eng != nil {
				in.replay(&rec.val.fx)
			}
			if rec.val.sorted {
				in.sorted++
			}
			in.valid++
			in.received.add(rec.counts)
		}
		if gov != nil && rec.val.rule >= 0 {
			if rec.val.outcome == outcomeDropped {
				if rule := gov.eng.RuleName(int(rec.val.rule)); rule == rules.UsageDropRuleName {
					gov.usage.count(rec.counts)
				} else {
					gov.stats.drop(rule, rec.val.msg, rec.counts)
				}
				continue
			}
			in.changed(int(rec.val.rule))
		}
		if rec.val.outcome == outcomeDropped {
			continue // only with gov: a rule dropped it
		}
		p, err := in.part(rec.val.placeHash)
		if err != nil {
			return err
		}
		if rec.kind == recHit {
			p.batch = in.appendHit(p.batch, rec)
			p.series++
			continue
		}
		for _, e := range in.missEntries[rec.entFrom:rec.entTo] {
			p.batch = append(p.batch, in.missBatch[e.off:e.end]...)
			p.series++
		}
	}
	for _, md := range in.metadata {
		p, err := in.part(in.placeHash(md.MetricFamilyName))
		if err != nil {
			return err
		}
		p.metadata = append(p.metadata, md)
	}
	return nil
}

// replay counts the rule effects of a cache hit, made once per distinct
// effects at the end of the request (countRules): the counters are shared
// by every request, the hits of a request mostly share their effects.
func (in *intake) replay(fx *rules.Effects) {
	for i := range in.replays {
		if in.replays[i].fx == *fx {
			in.replays[i].n++
			return
		}
	}
	in.replays = append(in.replays, replay{fx: *fx, n: 1})
}

// changed counts a series rule i changed, summed at the end of the request
// (countRules).
func (in *intake) changed(i int) {
	for len(in.changes) <= i {
		in.changes = append(in.changes, 0)
	}
	in.changes[i]++
}

// countRules makes the rule counter increments replay and changed
// gathered.
func (in *intake) countRules() {
	eng := in.gov.eng
	for i := range in.replays {
		eng.ReplayN(&in.replays[i].fx, in.replays[i].n)
	}
	for i, n := range in.changes {
		if n > 0 {
			in.gov.stats.change(eng.RuleName(i), n)
		}
	}
	in.replays, in.changes = in.replays[:0], in.changes[:0]
}

// replay is the rule effects of n cache hits.
type replay struct {
	fx rules.Effects
	n  int
}

// appendHit appends the entry of a series found in the cache.
func (in *intake) appendHit(dst []byte, rec *seriesRec) []byte {
	samples := in.samples[rec.samplesFrom:rec.samplesTo]
	size := len(rec.val.out)
	for _, s := range samples {
		size += len(s)
	}
	flags := byte(0)
	if rec.extras {
		flags = record.FlagExtras
	}
	m := &rec.meta
	if m.Present() {
		size += record.MetadataFieldSize(m.Type, m.Help, m.Unit)
	}
	dst = record.AppendHeader(dst, rec.val.outHash, flags, len(samples), 0, 0, size)
	dst = append(dst, rec.val.out...)
	for _, s := range samples {
		dst = append(dst, s...)
	}
	if m.Present() {
		dst = record.AppendMetadataField(dst, m.Type, m.Help, m.Unit)
	}
	return dst
}

// nonEmptyParts returns the parts that carry anything.
func (in *intake) nonEmptyParts() []*part {
	out := in.parts[:0:0]
	for _, p := range in.parts {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
