package web

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	toolkitweb "github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/promgov/promgov/internal/filewatch"
)

// webConfigCheckInterval is how often the web configuration file and the
// files it names are checked for a change.
const webConfigCheckInterval = time.Second

// webConfig is a parsed exporter-toolkit web configuration and the TLS
// configuration it makes (nil without tls_server_config).
type webConfig struct {
	cfg *toolkitweb.Config
	tls *tls.Config
}

// loadWebConfig reads and validates path the way exporter-toolkit does
// (its Validate, then the same YAML decoding and defaults), and names the
// files the result depends on: the file itself, the certificate, key and
// client CA files.
func loadWebConfig(path string) (webConfig, []string, error) {
	files := []string{path}
	if err := toolkitweb.Validate(path); err != nil {
		return webConfig{}, files, fmt.Errorf("web.config_file %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return webConfig{}, files, fmt.Errorf("read web.config_file: %w", err)
	}
	c := &toolkitweb.Config{
		TLSConfig:  toolkitweb.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: toolkitweb.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return webConfig{}, files, fmt.Errorf("web.config_file %s: %w", path, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	files = append(files, c.TLSConfig.TLSCertPath, c.TLSConfig.TLSKeyPath, c.TLSConfig.ClientCAs)
	wc := webConfig{cfg: c}
	if !c.TLSConfig.IsEnabled() {
		return wc, files, nil
	}
	tc, err := toolkitweb.ConfigToTLSConfig(&c.TLSConfig)
	if err != nil {
		return webConfig{}, files, fmt.Errorf("web.config_file %s: tls_server_config: %w", path, err)
	}
	// The toolkit's GetCertificate reads the pair on every handshake; this
	// configuration is rebuilt when the files change, so read it once.
	cert, err := tc.GetCertificate(nil)
	if err != nil {
		return webConfig{}, files, fmt.Errorf("web.config_file %s: %w", path, err)
	}
	tc.GetCertificate = nil
	tc.Certificates = []tls.Certificate{*cert}
	wc.tls = tc
	return wc, files, nil
}

// webConfigHandler applies a web configuration to every request as
// exporter-toolkit's own handler does — response headers, the rate limit,
// basic_auth_users — from a parsed configuration rebuilt only when the
// file changes, instead of reading and parsing the file per request.
type webConfigHandler struct {
	next    http.Handler
	cache   *filewatch.Cache[webConfig]
	limiter *rate.Limiter // nil: no rate_limit
	logger  *slog.Logger
	checked passwordCache
}

func (h *webConfigHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wc, err := h.cache.Get()
	if err != nil {
		// As exporter-toolkit: a broken file refuses requests until fixed.
		h.logger.Error("unable to use the web configuration", "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	if h.limiter != nil && !h.limiter.Allow() {
		http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
		return
	}
	for k, v := range wc.cfg.HTTPConfig.Header {
		w.Header().Set(k, v)
	}
	if len(wc.cfg.Users) == 0 || h.basicAuthOK(wc.cfg, r) {
		h.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("WWW-Authenticate", "Basic")
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}

// unknownUserHash is the bcrypt hash of a random password, compared for a
// user name not configured so that a response's timing does not tell
// which names exist.
const unknownUserHash = "$2a$10$CR0BAOPJcJcNdN3leH399u80At/rqtQB6xKTe/1dPRc7JnblMAD4."

func (h *webConfigHandler) basicAuthOK(c *toolkitweb.Config, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := c.Users[user]
	if !known {
		hash = unknownUserHash
	}
	return h.checked.check(user, string(hash), pass) && known
}

// passwordCache remembers bcrypt comparisons by a digest of (user, hash,
// password), bounded, so a sender's every request does not cost one; one
// comparison runs at a time, bounding the CPU a password guesser takes.
type passwordCache struct {
	mu     sync.Mutex
	seen   map[[sha256.Size]byte]bool
	bcrypt sync.Mutex
}

const passwordCacheSize = 128

func (p *passwordCache) check(user, hash, pass string) bool {
	key := sha256.Sum256([]byte(fmt.Sprintf("%d:%s%d:%s%s", len(user), user, len(hash), hash, pass)))
	p.mu.Lock()
	ok, found := p.seen[key]
	p.mu.Unlock()
	if found {
		return ok
	}
	p.bcrypt.Lock()
	ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
	p.bcrypt.Unlock()
	p.mu.Lock()
	if p.seen == nil || len(p.seen) >= passwordCacheSize {
		p.seen = make(map[[sha256.Size]byte]bool) // start over: bounded, and cheap to refill
	}
	p.seen[key] = ok
	p.mu.Unlock()
	return ok
}

// serveWebConfig serves s with the web configuration file: HTTPS with the
// file's TLS settings (rebuilt on new connections after the file or the
// certificates changed), and the toolkit's per-request semantics through
// webConfigHandler.
func (s *Server) serveWebConfig() error {
	path := s.cfg.ConfigFile
	cache, err := filewatch.New(webConfigCheckInterval, func() (webConfig, []string, error) { return loadWebConfig(path) })
	if err != nil {
		return err
	}
	wc, _ := cache.Get()
	h := &webConfigHandler{next: s.srv.Handler, cache: cache, logger: s.logger}
	if rl := wc.cfg.RateLimiterConfig; rl.Interval != 0 {
		h.limiter = rate.NewLimiter(rate.Every(rl.Interval), rl.Burst)
	}
	s.srv.Handler = h
	if wc.tls == nil {
		s.logger.Info("TLS is disabled", "address", s.Addr())
		return s.srv.Serve(s.ln)
	}
	protos := []string{"http/1.1"}
	if wc.cfg.HTTPConfig.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	} else {
		s.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.srv.TLSConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			wc, err := cache.Get()
			if err != nil {
				return nil, err
			}
			if wc.tls == nil {
				return nil, fmt.Errorf("web.config_file %s: tls_server_config was removed; restart to serve plain HTTP", path)
			}
			tc := wc.tls.Clone()
			tc.NextProtos = protos
			return tc, nil
		},
	}
	s.logger.Info("TLS is enabled", "address", s.Addr(), "http2", wc.cfg.HTTPConfig.HTTP2)
	return s.srv.ServeTLS(s.ln, "", "")
}
