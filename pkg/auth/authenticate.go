package auth

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// errNoCredentials and errBadCredentials answer 401.
var (
	errNoCredentials  = errors.New("no credentials: send basic auth, a bearer token or a client certificate")
	errBadCredentials = errors.New("unknown or wrong credentials")
)

// Authenticate returns the identity of r's credential, checked in this
// order: a bearer token, a basic-auth user, the common name of a client
// certificate the TLS server verified. Safe for concurrent use.
func (p *Policy) Authenticate(r *http.Request, cache *PasswordCache) (*Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			if id := p.byToken[sha256.Sum256([]byte(strings.TrimSpace(tok)))]; id != nil {
				return id, nil
			}
			return nil, errBadCredentials
		}
	}
	if user, pass, ok := r.BasicAuth(); ok {
		e := p.byUser[user]
		if e == nil {
			return nil, errBadCredentials
		}
		if e.hash != nil && !cache.check(e.hash, user, pass) {
			return nil, errBadCredentials
		}
		return e.id, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if id := p.byCN[r.TLS.VerifiedChains[0][0].Subject.CommonName]; id != nil {
			return id, nil
		}
		return nil, errBadCredentials
	}
	return nil, errNoCredentials
}

// PasswordCache remembers passwords that matched a bcrypt hash, so a
// sender's every request does not cost a bcrypt comparison (tens of
// milliseconds by design). It keeps only a hash of hash, user and password,
// and is bounded. Safe for concurrent use.
type PasswordCache struct {
	mu sync.Mutex
	ok map[[sha256.Size]byte]struct{}
}

// maxCachedPasswords bounds the cache; it is cleared when full.
const maxCachedPasswords = 4096

// NewPasswordCache returns an empty cache.
func NewPasswordCache() *PasswordCache {
	return &PasswordCache{ok: map[[sha256.Size]byte]struct{}{}}
}

func (c *PasswordCache) check(hash []byte, user, pass string) bool {
	h := sha256.New()
	h.Write(hash)
	h.Write([]byte{0})
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	var key [sha256.Size]byte
	h.Sum(key[:0])
	c.mu.Lock()
	_, hit := c.ok[key]
	c.mu.Unlock()
	if hit {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	c.mu.Lock()
	if len(c.ok) >= maxCachedPasswords {
		clear(c.ok)
	}
	c.ok[key] = struct{}{}
	c.mu.Unlock()
	return true
}
