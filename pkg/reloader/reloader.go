// Package reloader makes a running promgov process apply a changed
// configuration file without a restart. It is the sidecar of the Helm
// chart's pods (cmd/reloader): Kubernetes updates a mounted ConfigMap in
// place (by swapping a symlink), the reloader notices the new content and
// calls the process's POST /-/reload.
//
// It polls rather than watches, so it sees the symlink swap of a ConfigMap
// volume, an edited file and a file written by another tool alike. The
// content it starts with counts as applied (the process read it at
// startup). New content is acted on once two reads one interval apart
// agree, so a file caught half-written (an editor or tool that truncates
// and then writes) is not reloaded as it was in between. A reload answered
// 2xx is done; 4xx (the process refused the
// new file, e.g. it does not validate, or it has no reload endpoint) is
// logged and not retried until the content changes again; 5xx or a
// transport error is retried every interval.
package reloader

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures a Reloader.
type Config struct {
	// Files are the watched files; a change of any of them reloads.
	Files []string `yaml:"files"`
	// URLs are the reload endpoints POSTed on a change, e.g.
	// http://127.0.0.1:9500/-/reload.
	URLs []string `yaml:"urls"`
	// Interval is how often the files are read, and failed reloads retried.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one reload request.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults RegisterFlags registers.
func DefaultConfig() Config {
	return Config{Interval: 10 * time.Second, Timeout: 30 * time.Second}
}

// RegisterFlags registers the flags, prefix prepended, with the defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.Func(prefix+"file", "File to watch (repeat the flag for several).", func(s string) error {
		c.Files = append(c.Files, s)
		return nil
	})
	fs.Func(prefix+"url", "Reload endpoint to POST when a file changes, e.g. http://127.0.0.1:9500/-/reload (repeat the flag for several).", func(s string) error {
		c.URLs = append(c.URLs, s)
		return nil
	})
	c.Interval, c.Timeout = d.Interval, d.Timeout
	fs.DurationVar(&c.Interval, prefix+"interval", d.Interval, "How often the files are read and failed reloads retried.")
	fs.DurationVar(&c.Timeout, prefix+"timeout", d.Timeout, "Timeout of one reload request.")
}

// Validate reports the first invalid field and how to fix it.
func (c *Config) Validate() error {
	if len(c.Files) == 0 {
		return errors.New("file: give at least one file to watch, e.g. --file=/etc/promgov/promgov.yml")
	}
	if len(c.URLs) == 0 {
		return errors.New("url: give at least one reload endpoint, e.g. --url=http://127.0.0.1:9500/-/reload")
	}
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url: %q is not an http(s) URL; use e.g. http://127.0.0.1:9500/-/reload", raw)
		}
	}
	if c.Interval <= 0 {
		return errors.New("interval: must be positive, e.g. 10s")
	}
	if c.Timeout <= 0 {
		return errors.New("timeout: must be positive, e.g. 30s")
	}
	return nil
}

// Reloader polls the files and reloads the endpoints on a change.
type Reloader struct {
	cfg    Config
	client *http.Client
	logger *slog.Logger
}

// New returns a Reloader; cfg must be valid.
func New(cfg Config, client *http.Client, logger *slog.Logger) *Reloader {
	return &Reloader{cfg: cfg, client: client, logger: logger}
}

// Run polls until ctx ends and returns nil then.
func (r *Reloader) Run(ctx context.Context) error {
	applied, err := r.digest()
	if err != nil {
		r.logger.Warn("cannot read the watched files yet; the first content read counts as applied", "err", err)
	}
	// pending: endpoints still to reload for the current content.
	var pending []string
	// seen: new content read once, reloaded if the next read agrees.
	var seen string
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		d, err := r.digest()
		switch {
		case err != nil:
			r.logger.Warn("reading the watched files failed; keeping the last content", "err", err)
		case applied == "":
			applied = d
		case d == applied:
			seen = ""
		case d != seen:
			seen = d // settle: wait one interval for the writer to finish
		default:
			r.logger.Info("configuration changed; reloading", "files", strings.Join(r.cfg.Files, ","))
			applied, seen, pending = d, "", append([]string(nil), r.cfg.URLs...)
		}
		pending = r.reloadAll(ctx, pending)
	}
}

// reloadAll POSTs to every url and returns those to retry.
func (r *Reloader) reloadAll(ctx context.Context, urls []string) []string {
	var retry []string
	for _, u := range urls {
		code, msg, err := r.post(ctx, u)
		switch {
		case err != nil:
			r.logger.Warn("reload failed; retrying", "url", u, "retry_in", r.cfg.Interval, "err", err)
			retry = append(retry, u)
		case code/100 == 2:
			r.logger.Info("reloaded", "url", u)
		case code/100 == 4:
			r.logger.Error("reload refused; not retrying until the configuration changes again", "url", u, "status", code, "answer", msg)
		default:
			r.logger.Warn("reload failed; retrying", "url", u, "status", code, "answer", msg, "retry_in", r.cfg.Interval)
			retry = append(retry, u)
		}
	}
	return retry
}

func (r *Reloader) post(ctx context.Context, u string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// digest hashes the files' contents, in order.
func (r *Reloader) digest() (string, error) {
	h := sha256.New()
	for _, f := range r.cfg.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
