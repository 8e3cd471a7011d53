package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/internal/fileutil"
	"github.com/promgov/promgov/pkg/wal"
)

// Backends forwards the write-ahead log to every configured backend
// independently: each backend has its own Client (HTTP settings,
// protocol), its own WALForwarder (read position, queue, shards, retry
// gate) and, when there are several, its own persisted position in the
// WAL. A slow or failing backend therefore never delays another; it only
// keeps the WAL's segments on disk until it has caught up, because the
// WAL's checkpoint (which deletes segments) is the slowest backend's
// position. The WAL's bounds (size, age) then apply: under the
// backpressure policy a backend that stays down long enough fills the WAL
// and pushes are refused for everybody, as with a single backend.
//
// Metrics of each backend carry the label backend="<name>".
type Backends struct {
	fwds    []*WALForwarder
	clients []*Client
}

// NewBackends builds the forwarders of backends (as ResolveBackends
// returns them) over log, whose files live in dir. logger may be nil; reg
// may be nil (no registration).
func NewBackends(cfg Config, backends []BackendConfig, log Log, dir string, logger *slog.Logger, reg prometheus.Registerer) (*Backends, error) {
	if len(backends) == 0 {
		return nil, errors.New("forward: no backend configured")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	names := make([]string, len(backends))
	for i, b := range backends {
		names[i] = b.Name
	}
	pos := newPositions(log, dir, names, logger)
	out := &Backends{}
	for _, b := range backends {
		blog := logger.With("backend", b.Name)
		var breg prometheus.Registerer
		if reg != nil {
			breg = prometheus.WrapRegistererWith(prometheus.Labels{"backend": b.Name}, reg)
		}
		client, err := NewClient(b, blog, breg)
		if err != nil {
			out.close()
			return nil, err
		}
		out.clients = append(out.clients, client)
		fwd, err := NewWALForwarder(cfg, pos.forBackend(b.Name), client, blog, breg)
		if err != nil {
			out.close()
			return nil, fmt.Errorf("backend %q: %w", b.Name, err)
		}
		fwd.routeTenants(b.Tenants)
		fwd.relabel = newRelabeler(b.WriteRelabelConfigs, breg)
		out.fwds = append(out.fwds, fwd)
	}
	return out, nil
}

// Run runs every backend's forwarder until ctx is done; they stop (flush,
// commit) concurrently. It returns their errors joined.
func (b *Backends) Run(ctx context.Context) error {
	errs := make([]error, len(b.fwds))
	var wg sync.WaitGroup
	for i, f := range b.fwds {
		wg.Go(func() { errs[i] = f.Run(ctx) })
	}
	wg.Wait()
	b.close()
	return errors.Join(errs...)
}

func (b *Backends) close() {
	for _, c := range b.clients {
		_ = c.Close(context.Background())
	}
}

// positions keeps each backend's own position in the WAL and commits the
// slowest one to the WAL, which deletes only the segments every backend is
// past. With one backend the WAL's checkpoint is its position and no file
// is written; with several each position is persisted in
// <dir>/forward-<name>.position (written atomically) before the WAL's
// checkpoint may move.
type positions struct {
	log    Log
	dir    string
	files  bool
	logger *slog.Logger

	mu sync.Mutex
	at map[string]wal.Position
}

// newPositions loads the positions of names. A backend without a readable
// position file, or with one behind the WAL's checkpoint (a new backend,
// or segments dropped by the overflow policy), starts at the checkpoint.
func newPositions(log Log, dir string, names []string, logger *slog.Logger) *positions {
	p := &positions{log: log, dir: dir, files: len(names) > 1, logger: logger, at: make(map[string]wal.Position, len(names))}
	start := log.Checkpoint()
	for _, name := range names {
		pos := start
		if p.files {
			saved, ok, err := readPosition(p.file(name))
			switch {
			case err != nil:
				logger.Warn("ignoring unreadable forward position; starting at the WAL checkpoint", "backend", name, "err", err)
			case ok && !saved.Before(start):
				pos = saved
			}
		}
		p.at[name] = pos
	}
	return p
}

func (p *positions) file(name string) string {
	return filepath.Join(p.dir, "forward-"+name+".position")
}

// forBackend is the Log of one backend: the shared WAL's reader, with the
// backend's own checkpoint.
func (p *positions) forBackend(name string) Log { return &backendLog{p: p, name: name} }

// commit records name's new position and moves the WAL's checkpoint to the
// slowest backend's position.
func (p *positions) commit(name string, pos wal.Position) error {
	if p.files {
		if err := writePosition(p.file(name), pos); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at[name].Before(pos) {
		p.at[name] = pos
	}
	slowest := pos
	for _, at := range p.at {
		if at.Before(slowest) {
			slowest = at
		}
	}
	return p.log.Commit(slowest) // the WAL ignores a position it is past
}

// backendLog implements Log for one backend.
type backendLog struct {
	p    *positions
	name string
}

func (l *backendLog) NewReader(from wal.Position) *wal.Reader { return l.p.log.NewReader(from) }

func (l *backendLog) Checkpoint() wal.Position {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.p.at[l.name]
}

func (l *backendLog) Commit(pos wal.Position) error { return l.p.commit(l.name, pos) }

// readPosition reads a position file; ok is false when there is none.
func readPosition(path string) (pos wal.Position, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return wal.Position{}, false, nil
	}
	if err != nil {
		return wal.Position{}, false, err
	}
	if _, err := fmt.Sscanf(string(b), "promgov-forward-position %d %d\n", &pos.Segment, &pos.Offset); err != nil || pos.Segment < 0 || pos.Offset < 0 {
		return wal.Position{}, false, fmt.Errorf("%s: not a position file (%q)", path, b)
	}
	return pos, true, nil
}

// writePosition persists pos atomically.
func writePosition(path string, pos wal.Position) error {
	_, err := fileutil.WriteAtomic(path, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "promgov-forward-position %d %d\n", pos.Segment, pos.Offset)
		return err
	})
	return err
}
