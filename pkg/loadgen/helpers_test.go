package loadgen

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// syncBuffer is a goroutine-safe bytes.Buffer for log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
