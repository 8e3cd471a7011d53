package govsync

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
)

// Node is one binary's part in governance as code: the store, the Syncer
// on the ring's gossip, the API and the file's relation to the store. A
// nil *Node (no store configured) does nothing: the file's governance
// sections apply as before.
type Node struct {
	cfg     govstore.Config
	role    config.Role
	file    string
	store   *govstore.Store
	syncer  *Syncer
	guard   *Guard // nil: no automatic rollback
	logger  *slog.Logger
	applyFn ApplyFunc

	mu  sync.Mutex
	doc *govstore.Document // the applied version's document
}

// NewNode opens the store of cfg.Governance and joins rg's gossip; apply
// applies a document on this node, and meter (distributors; nil on
// ingesters) feeds the automatic rollback. It returns nil when no store is
// configured.
func NewNode(cfg *config.Common, role config.Role, rg *ring.Ring, apply ApplyFunc, meter DropMeter, logger *slog.Logger, reg prometheus.Registerer) (*Node, error) {
	if !cfg.Governance.Enabled() {
		return nil, nil
	}
	store, err := cfg.Governance.Open()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg.Governance, role: role, file: cfg.File, store: store, logger: logger.With("component", "governance"), applyFn: apply}
	n.guard = NewGuard(cfg.Governance.AutoRollback, meter, store, func(v uint64) { n.syncer.Notify(v) }, n.logger, reg)
	n.syncer = New(store, n.apply, rg, Options{Node: rg.Self().Name, Role: string(role),
		PollInterval: cfg.Governance.PollInterval, Timeout: cfg.Governance.Timeout, Logger: n.logger, Registerer: reg,
		OnActive: n.guard.Activated})
	rg.SetGossip(n.syncer)
	return n, nil
}

func (n *Node) apply(doc govstore.Document) error {
	if err := n.applyFn(doc); err != nil {
		return err
	}
	n.mu.Lock()
	n.doc = &doc
	n.mu.Unlock()
	return nil
}

// Store is the governance store; nil when none is configured.
func (n *Node) Store() *govstore.Store {
	if n == nil {
		return nil
	}
	return n.store
}

// Notify announces version v, written on this node, to the cluster (the
// rollout's gossip notice); a nil Node does nothing.
func (n *Node) Notify(v uint64) {
	if n == nil {
		return
	}
	n.syncer.Notify(v)
}

// Register mounts the governance API (distributors) or only the rollout
// status (ingesters) on mux.
func (n *Node) Register(mux *http.ServeMux) {
	if n == nil {
		return
	}
	api := govapi.New(n.store, n.syncer, n.cfg.Timeout, n.logger)
	if n.role == config.RoleDistributor {
		api.Register(mux)
		return
	}
	api.RegisterStatus(mux)
}

// Run seeds an empty store from the file (distributors), then keeps the
// node on the active version until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if n == nil {
		<-ctx.Done()
		return nil
	}
	defer n.store.Close()
	// The guard and the seeding stop with ctx, before the store closes.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = n.guard.Run(ctx)
	}()
	if n.role == config.RoleDistributor {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.seedUntilDone(ctx)
		}()
	}
	return n.syncer.Run(ctx)
}

// seedUntilDone seeds the store from the file, retrying with backoff while
// the store is unreachable: a store that is down when the first
// distributor starts is seeded once it is back, without a restart.
func (n *Node) seedUntilDone(ctx context.Context) {
	backoff := time.Second
	for !n.seed(ctx) {
		// Jittered, so that distributors started together, whose claims
		// on version 1 collided, do not collide again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// seed seeds an empty store from the file (or, in gitops mode, writes the
// file's sections when they changed). It reports false when the store
// could not be read or written (worth retrying).
func (n *Node) seed(ctx context.Context) bool {
	_, body, err := govstore.DocumentFromFile(n.file)
	if err != nil {
		n.logger.Error("cannot seed the governance store from the file", "err", err)
		return true // the file will not fix itself; a reload reports it
	}
	sctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	start := time.Now()
	v, err := n.store.Seed(sctx, body, "seed:"+n.file)
	switch {
	case err != nil:
		n.logger.Warn("cannot seed the governance store; the file's sections run until it is reachable, retrying",
			"err", err, "took", time.Since(start))
		return false
	case v != nil:
		n.logger.Info("governance store seeded from the file", "version", v.Number, "hash", v.Hash)
		n.syncer.Notify(v.Number)
	case n.cfg.FileMode == govstore.FileModeGitOps:
		n.gitops(ctx, body)
	default:
		n.logger.Debug("governance store already seeded", "took", time.Since(start))
	}
	return true
}

// gitops writes the file's governance sections as a new version when they
// differ from the newest version.
func (n *Node) gitops(ctx context.Context, body []byte) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	st, err := n.store.Resolve(ctx)
	if err != nil {
		n.logger.Warn("gitops: governance store unreadable", "err", err)
		return
	}
	if st.Active != nil && st.Active.Hash == govstore.ContentHash(body) {
		return
	}
	v, err := n.store.Write(ctx, govstore.WriteRequest{Body: body, IfMatch: st.Head, Author: "gitops:" + n.file,
		Message: "configuration file changed"})
	var ce *govstore.ConflictError
	switch {
	case errors.As(err, &ce):
		n.logger.Info("gitops: another node wrote a version first", "current", ce.Current.Number)
	case err != nil:
		n.logger.Error("gitops: cannot write the file's governance sections", "err", err)
	default:
		n.logger.Info("gitops: the configuration file became a new version", "version", v.Number)
		n.syncer.Notify(v.Number)
	}
}

// OnReload is called with the re-read configuration before a reload
// applies it. With a store, the governed sections come from the active
// version: it returns the applied version's document, whose sections
// replace next's (rules, cardinality.limits, usage.drop_unused; each
// binary takes those it reads), after, in gitops mode, a distributor wrote
// the file's sections as a new version. It returns nil without a store or
// before a version was applied: the file's sections apply.
func (n *Node) OnReload(next *config.Common) (*govstore.Document, error) {
	if n == nil {
		return nil, nil
	}
	if n.role == config.RoleDistributor && n.cfg.FileMode == govstore.FileModeGitOps {
		_, body, err := govstore.DocumentFromFile(next.File)
		if err != nil {
			return nil, err
		}
		n.gitops(context.Background(), body)
		n.syncer.Reconcile(context.Background())
	} else {
		n.logger.Info("reload: the governed sections (rules, cardinality.limits, usage.drop_unused) come from the governance store; the file's are ignored",
			"file_mode", n.cfg.FileMode)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.doc, nil
}
