// Package auth maps the credential of an HTTP request (a basic-auth user, a
// bearer token, or a verified client certificate's common name) to an
// identity with roles (write, read, admin) and the tenants it may act for,
// and enforces them on every route of a promgov binary: the write path, the
// read APIs (tenant isolation) and the admin endpoints, whose every use is
// written to an audit log. TLS, client certificate verification and the
// basic-auth password check of the users listed in the web configuration
// are exporter-toolkit's (--web.config.file); this package decides what an
// authenticated caller may do. Without --auth.config-file nothing is
// checked (docs/security.md).
package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Role is what an identity may do.
type Role string

// The roles. Admin may do everything the others may.
const (
	// RoleWrite sends remote write for its tenants.
	RoleWrite Role = "write"
	// RoleRead reads the analytics APIs (cardinality, usage) of its
	// tenants, and the cluster-wide endpoints when it may act for every
	// tenant.
	RoleRead Role = "read"
	// RoleAdmin reloads, changes configuration, runs jobs and tests
	// candidate rulesets.
	RoleAdmin Role = "admin"
)

// AnyTenant in an identity's tenants lets it act for every tenant.
const AnyTenant = "*"

// Config is where the identities are (the binaries use the prefix "auth.").
type Config struct {
	// ConfigFile is the identities file; empty turns authorisation off.
	ConfigFile string `yaml:"config_file"`
}

// RegisterFlags registers the flags under prefix.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.ConfigFile, prefix+"config-file", "", "Identities file: who may write, read and administer, and for which tenants (docs/security.md). Empty: every request is allowed, as without authentication.")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if c.ConfigFile == "" {
		return nil
	}
	if _, err := os.Stat(c.ConfigFile); err != nil {
		return fmt.Errorf("auth.config_file: %w; point it at an identities file (docs/security.md) or leave it empty", err)
	}
	return nil
}

// IdentityConfig is one entry of the identities file. Exactly one of
// BasicAuthUser, BearerTokenFile and ClientCertCN names its credential.
type IdentityConfig struct {
	// Name is shown in logs and the audit log.
	Name string `yaml:"name"`
	// BasicAuthUser is a basic-auth user name. PasswordHash is its bcrypt
	// hash; when empty, the user must be listed in the web configuration's
	// basic_auth_users, which exporter-toolkit checks first.
	BasicAuthUser string `yaml:"basic_auth_user,omitempty"`
	PasswordHash  string `yaml:"password_hash,omitempty"`
	// BearerTokenFile holds the bearer token (surrounding white space
	// trimmed), relative to the identities file.
	BearerTokenFile string `yaml:"bearer_token_file,omitempty"`
	// ClientCertCN is the subject common name of a client certificate the
	// TLS server verified (client_auth_type RequireAndVerifyClientCert or
	// VerifyClientCertIfGiven in the web configuration).
	ClientCertCN string `yaml:"client_cert_cn,omitempty"`
	// Roles lists what it may do.
	Roles []Role `yaml:"roles"`
	// Tenants lists the tenants it may act for; "*" (or an empty list) is
	// every tenant.
	Tenants []string `yaml:"tenants,omitempty"`
}

// FileConfig is the identities file.
type FileConfig struct {
	Identities []IdentityConfig `yaml:"identities"`
}

// Identity is an authenticated caller. Immutable.
type Identity struct {
	Name    string
	roles   []Role
	tenants []string // nil: every tenant
}

// Anonymous is the identity of every request when authorisation is off.
var Anonymous = &Identity{Name: "anonymous", roles: []Role{RoleAdmin}}

// Has reports whether the identity has role (admin has every role).
func (id *Identity) Has(role Role) bool {
	return slices.Contains(id.roles, role) || slices.Contains(id.roles, RoleAdmin)
}

// AllTenants reports whether it may act for every tenant.
func (id *Identity) AllTenants() bool { return id.tenants == nil }

// Tenants returns the tenants it may act for (nil: every tenant).
func (id *Identity) Tenants() []string { return slices.Clone(id.tenants) }

// MayActFor reports whether it may act for tenant.
func (id *Identity) MayActFor(tenant string) bool {
	return id.tenants == nil || slices.Contains(id.tenants, tenant)
}

// DefaultTenant is the tenant a tenant-scoped identity acts for when a
// request names none: its first.
func (id *Identity) DefaultTenant() string {
	if len(id.tenants) == 0 {
		return ""
	}
	return id.tenants[0]
}

// Policy is a loaded identities file. Immutable; safe for concurrent use.
type Policy struct {
	byUser  map[string]*userEntry
	byToken map[[sha256.Size]byte]*Identity
	byCN    map[string]*Identity
}

type userEntry struct {
	id   *Identity
	hash []byte // nil: checked by exporter-toolkit
}

// LoadFile reads the identities file at path. webUsers are the users the
// web configuration's basic_auth_users lists (exporter-toolkit checks their
// passwords before this package sees the request).
func LoadFile(path string, webUsers map[string]bool) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth.config_file: %w", err)
	}
	p, err := Parse(b, filepath.Dir(path), webUsers)
	if err != nil {
		return nil, fmt.Errorf("auth.config_file %s: %w", path, err)
	}
	return p, nil
}

// Parse parses an identities file; files it names are relative to dir.
func Parse(b []byte, dir string, webUsers map[string]bool) (*Policy, error) {
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("parse identities: %w", err)
	}
	if len(fc.Identities) == 0 {
		return nil, errors.New("identities: empty; list at least one identity, or leave --auth.config-file unset to turn authorisation off")
	}
	p := &Policy{byUser: map[string]*userEntry{}, byToken: map[[sha256.Size]byte]*Identity{}, byCN: map[string]*Identity{}}
	names := map[string]bool{}
	for i, ic := range fc.Identities {
		field := fmt.Sprintf("identities[%d]", i)
		if ic.Name == "" {
			return nil, fmt.Errorf("%s.name: must not be empty; name the identity for the logs", field)
		}
		if names[ic.Name] {
			return nil, fmt.Errorf("%s.name %q: used twice; names must be unique", field, ic.Name)
		}
		names[ic.Name] = true
		id, err := newIdentity(field, ic)
		if err != nil {
			return nil, err
		}
		if err := p.addCredential(field, ic, id, dir, webUsers); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func newIdentity(field string, ic IdentityConfig) (*Identity, error) {
	if len(ic.Roles) == 0 {
		return nil, fmt.Errorf("%s.roles: empty; give one or more of write, read, admin", field)
	}
	for _, r := range ic.Roles {
		if r != RoleWrite && r != RoleRead && r != RoleAdmin {
			return nil, fmt.Errorf("%s.roles: unknown role %q; use write, read or admin", field, r)
		}
	}
	id := &Identity{Name: ic.Name, roles: slices.Clone(ic.Roles)}
	for _, t := range ic.Tenants {
		switch {
		case t == AnyTenant:
			if len(ic.Tenants) > 1 {
				return nil, fmt.Errorf("%s.tenants: %q is every tenant; list it alone", field, AnyTenant)
			}
			return id, nil
		case strings.TrimSpace(t) == "" || strings.TrimSpace(t) != t:
			return nil, fmt.Errorf("%s.tenants: %q is not a tenant name; remove the white space", field, t)
		}
		id.tenants = append(id.tenants, t)
	}
	return id, nil
}

func (p *Policy) addCredential(field string, ic IdentityConfig, id *Identity, dir string, webUsers map[string]bool) error {
	n := 0
	for _, s := range []string{ic.BasicAuthUser, ic.BearerTokenFile, ic.ClientCertCN} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%s: name exactly one credential: basic_auth_user, bearer_token_file or client_cert_cn", field)
	}
	if ic.PasswordHash != "" && ic.BasicAuthUser == "" {
		return fmt.Errorf("%s.password_hash: only a basic_auth_user has a password", field)
	}
	switch {
	case ic.BasicAuthUser != "":
		if _, dup := p.byUser[ic.BasicAuthUser]; dup {
			return fmt.Errorf("%s.basic_auth_user %q: used by another identity", field, ic.BasicAuthUser)
		}
		e := &userEntry{id: id}
		if ic.PasswordHash != "" {
			if _, err := bcrypt.Cost([]byte(ic.PasswordHash)); err != nil {
				return fmt.Errorf("%s.password_hash: not a bcrypt hash (%w); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`", field, err)
			}
			e.hash = []byte(ic.PasswordHash)
		} else if !webUsers[ic.BasicAuthUser] {
			return fmt.Errorf("%s.basic_auth_user %q: no password_hash and not in the web configuration's basic_auth_users, so nothing would check its password; add one of them", field, ic.BasicAuthUser)
		}
		p.byUser[ic.BasicAuthUser] = e
	case ic.BearerTokenFile != "":
		path := ic.BearerTokenFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s.bearer_token_file: %w", field, err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return fmt.Errorf("%s.bearer_token_file %s: the token is shorter than 16 characters; use a long random token (e.g. openssl rand -hex 32)", field, path)
		}
		sum := sha256.Sum256([]byte(tok))
		if _, dup := p.byToken[sum]; dup {
			return fmt.Errorf("%s.bearer_token_file: the same token as another identity", field)
		}
		p.byToken[sum] = id
	default:
		if _, dup := p.byCN[ic.ClientCertCN]; dup {
			return fmt.Errorf("%s.client_cert_cn %q: used by another identity", field, ic.ClientCertCN)
		}
		p.byCN[ic.ClientCertCN] = id
	}
	return nil
}

// WebConfigUsers returns the user names of the basic_auth_users of an
// exporter-toolkit web configuration file (none when path is empty).
func WebConfigUsers(path string) (map[string]bool, error) {
	users := map[string]bool{}
	if path == "" {
		return users, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read web.config_file: %w", err)
	}
	var wc struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &wc); err != nil {
		return nil, fmt.Errorf("web.config_file %s: %w", path, err)
	}
	for u := range wc.Users {
		users[u] = true
	}
	return users, nil
}

// Load returns the identities cfg names, or nil (authorisation off) when it
// names none. webConfigFile is the exporter-toolkit web configuration,
// whose basic_auth_users have their passwords checked there.
func Load(cfg Config, webConfigFile string) (*Policy, error) {
	if cfg.ConfigFile == "" {
		return nil, nil
	}
	users, err := WebConfigUsers(webConfigFile)
	if err != nil {
		return nil, err
	}
	return LoadFile(cfg.ConfigFile, users)
}
