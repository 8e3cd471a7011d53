package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// fetchTimeout bounds downloading a module given as a URL.
const fetchTimeout = 30 * time.Second

// isURL reports whether module names an http(s) URL rather than a path.
func isURL(module string) bool {
	return strings.HasPrefix(module, "https://") || strings.HasPrefix(module, "http://")
}

// ReadModule returns the bytes of the module cfg names — a file path or an
// http(s) URL, at most MaxModuleBytes — checked for the WebAssembly header
// and, when cfg.SHA256 is set, against that digest. Load calls it; callers
// that cache loaded plugins call it to tell whether a module changed.
func ReadModule(ctx context.Context, cfg Config) ([]byte, error) {
	var (
		code []byte
		err  error
	)
	if isURL(cfg.Module) {
		code, err = fetchModule(ctx, cfg.Module)
	} else {
		code, err = readFile(cfg.Module)
	}
	if err != nil {
		return nil, err
	}
	if cfg.SHA256 != "" {
		sum := sha256.Sum256(code)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, cfg.SHA256) {
			return nil, fmt.Errorf("%s: sha256 is %s, the configuration pins %s; update sha256 or the module", cfg.Module, got, cfg.SHA256)
		}
	}
	if !bytes.HasPrefix(code, []byte("\x00asm")) {
		return nil, fmt.Errorf("%s is not a WebAssembly module (no \\0asm header)", cfg.Module)
	}
	return code, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, path)
}

// fetchModule downloads url (200 only, at most MaxModuleBytes, within
// fetchTimeout).
func fetchModule(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("module URL %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	if resp.ContentLength > MaxModuleBytes {
		return nil, fmt.Errorf("%s is over %d MiB (Content-Length %d)", url, MaxModuleBytes>>20, resp.ContentLength)
	}
	return readAtMost(resp.Body, url)
}

// readAtMost reads r up to MaxModuleBytes; more is an error naming what.
func readAtMost(r io.Reader, what string) ([]byte, error) {
	code, err := io.ReadAll(io.LimitReader(r, MaxModuleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(code) > MaxModuleBytes {
		return nil, fmt.Errorf("%s is over %d MiB", what, MaxModuleBytes>>20)
	}
	return code, nil
}
