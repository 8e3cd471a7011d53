package forward

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"
)

// BackendConfig configures one backend's Client: the yaml key "backend"
// for a single backend (binaries call RegisterFlags("backend.", fs)) or
// an entry of "backends" for several (see ResolveBackends).
type BackendConfig struct {
	// Name identifies the backend in logs, metrics (label "backend") and
	// the name of its WAL position file. Required in "backends"; the
	// single backend is called "default".
	Name string `yaml:"name"`
	// URL is the remote write endpoint of the storage backend. Required.
	URL string `yaml:"url"`
	// Protocol is the Remote Write version to start with: 1 or 2.
	Protocol int `yaml:"protocol"`
	// Timeout bounds one HTTP request to the backend.
	Timeout time.Duration `yaml:"timeout"`
	// TenantHeader is the HTTP header carrying the tenant ID. Empty means no
	// tenant header is sent.
	TenantHeader string `yaml:"tenant_header"`
	// Headers are added to every request, as Prometheus's remote_write
	// "headers". Headers the protocol or the client reserve (Content-Type,
	// Authorization, the tenant header, ...) are refused.
	Headers map[string]string `yaml:"headers"`
	// Tenants restricts the backend to these tenants' data; empty means
	// every tenant.
	Tenants []string `yaml:"tenants"`
	// WriteRelabelConfigs are applied to every series before it is sent
	// to this backend only, as Prometheus's remote_write
	// write_relabel_configs (model/relabel semantics, UTF-8 names): a
	// series they drop still reaches the other backends. Empty keeps the
	// forwarder's zero-decode path.
	WriteRelabelConfigs []*relabel.Config `yaml:"write_relabel_configs"`
	// HTTP is Prometheus's own HTTP client configuration, inline:
	// basic_auth, authorization, oauth2, tls_config, proxy_url (and
	// no_proxy, proxy_from_environment, proxy_connect_header),
	// http_headers, follow_redirects, enable_http2. Secrets can come from
	// files (password_file, credentials_file, client_secret_file, TLS
	// cert/key files), read again as they change; relative paths are
	// relative to the configuration file.
	HTTP config.HTTPClientConfig `yaml:",inline"`
}

// DefaultBackendConfig returns a BackendConfig with the flag defaults and no URL.
func DefaultBackendConfig() BackendConfig {
	return BackendConfig{
		Protocol: ProtocolV2, Timeout: 30 * time.Second, TenantHeader: "X-Scope-OrgID",
		// As Prometheus's remote write: redirects followed, HTTP/1.1.
		HTTP: config.HTTPClientConfig{FollowRedirects: true, EnableHTTP2: false},
	}
}

// RegisterFlags registers the backend flags under prefix (e.g. "backend.")
// with the defaults of DefaultBackendConfig. Authentication, TLS, proxy and
// headers are set in the configuration file only.
func (c *BackendConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultBackendConfig()
	c.HTTP = d.HTTP
	fs.StringVar(&c.URL, prefix+"url", d.URL, "Remote write URL of the storage backend (required unless the file lists backends:).")
	fs.IntVar(&c.Protocol, prefix+"protocol", d.Protocol, "Remote write protocol version to start with: 1 or 2. Version 2 falls back to 1 automatically.")
	fs.DurationVar(&c.Timeout, prefix+"timeout", d.Timeout, "Timeout of one remote write HTTP request.")
	fs.StringVar(&c.TenantHeader, prefix+"tenant-header", d.TenantHeader, "HTTP header carrying the tenant ID; empty sends none.")
}

// UnmarshalYAML decodes a backend onto the defaults of DefaultBackendConfig
// (so that every entry of "backends" has them), refusing unknown fields at
// every level.
func (c *BackendConfig) UnmarshalYAML(value *yaml.Node) error {
	type plain BackendConfig
	// Node.Decode does not refuse unknown fields: decode a copy strictly
	// first, so that a typo is an error rather than an ignored setting.
	raw, err := yaml.Marshal(value)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var strict plain
	if err := dec.Decode(&strict); err != nil {
		return fmt.Errorf("backend at line %d: %w", value.Line, err)
	}
	d := DefaultBackendConfig()
	p := (*plain)(&d)
	if err := value.Decode(p); err != nil {
		return err
	}
	*c = d
	return nil
}

// Validate reports the first invalid field, naming its yaml key (under
// "backend.") and the fix.
func (c *BackendConfig) Validate() error { return c.validate("backend.") }

// validate is Validate with the yaml path of the backend as prefix.
func (c *BackendConfig) validate(prefix string) error {
	if c.URL == "" {
		return fmt.Errorf("%surl: required; set it to the backend's remote write endpoint, e.g. http://prometheus:9090/api/v1/write", prefix)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("%surl: %w; set an absolute http(s) URL", prefix, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%surl: %q is not an absolute http(s) URL; use e.g. http://host:port/api/v1/write", prefix, c.URL)
	}
	if c.Protocol != ProtocolV1 && c.Protocol != ProtocolV2 {
		return fmt.Errorf("%sprotocol: %d is not supported; use 1 or 2", prefix, c.Protocol)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("%stimeout: %s must be positive; e.g. 30s", prefix, c.Timeout)
	}
	for name := range c.Headers {
		canon := http.CanonicalHeaderKey(name)
		if _, reserved := config.ReservedHeaders[canon]; reserved {
			return fmt.Errorf("%sheaders: %q is set by promgov or the HTTP client and cannot be configured; use basic_auth, authorization or oauth2 for credentials", prefix, name)
		}
		if c.TenantHeader != "" && canon == http.CanonicalHeaderKey(c.TenantHeader) {
			return fmt.Errorf("%sheaders: %q is the tenant header (%stenant_header), set from each request's tenant; remove it, or set tenant_header to \"\" to send a fixed value", prefix, name, prefix)
		}
	}
	for i, t := range c.Tenants {
		if t == "" {
			return fmt.Errorf("%stenants[%d]: empty tenant name; list tenant IDs, or leave tenants empty for every tenant", prefix, i)
		}
	}
	if err := validateRelabel(prefix+"write_relabel_configs", c.WriteRelabelConfigs); err != nil {
		return err
	}
	if err := c.HTTP.Validate(); err != nil {
		return fmt.Errorf("%s{basic_auth,authorization,oauth2,tls_config,proxy_url,http_headers}: %w", prefix, err)
	}
	return nil
}

// backendName is what a backend's name may be: it becomes a label value
// and part of a file name.
var backendName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// DefaultBackendName is the name of the single backend ("backend:" or the
// --backend.* flags).
const DefaultBackendName = "default"

// ResolveBackends returns the backends to forward to: the single backend
// (named DefaultBackendName) when list is empty, the entries of list
// otherwise. Each is validated; list entries need unique names.
func ResolveBackends(single BackendConfig, list []BackendConfig) ([]BackendConfig, error) {
	if len(list) == 0 {
		single.Name = DefaultBackendName
		if err := single.validate("backend."); err != nil {
			return nil, err
		}
		return []BackendConfig{single}, nil
	}
	if single.URL != "" {
		return nil, errors.New("backend.url and backends are both set: list every backend under backends (backend: and the --backend.* flags describe a single backend)")
	}
	seen := make(map[string]bool, len(list))
	out := make([]BackendConfig, len(list))
	for i, b := range list {
		prefix := fmt.Sprintf("backends[%d].", i)
		switch {
		case !backendName.MatchString(b.Name):
			return nil, fmt.Errorf("%sname: %q must be 1-64 letters, digits, '_' or '-'; e.g. mimir", prefix, b.Name)
		case seen[b.Name]:
			return nil, fmt.Errorf("%sname: %q is used twice; give every backend its own name", prefix, b.Name)
		}
		seen[b.Name] = true
		if err := b.validate(prefix); err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
