package remotewrite

import (
	"fmt"
	"net/http"
	"strings"
)

// MaxTenantIDLength bounds a tenant ID, as Mimir and Cortex do.
const MaxTenantIDLength = 150

// TenantError reports a tenant ID that breaks the rules of ValidateTenantID.
// It matches ErrBadRequest: the HTTP edge answers 400.
type TenantError struct {
	ID     string // the offending ID, truncated for display
	Header string // the header it came in, "" when not from a request
	Rule   string // the rule broken
}

// Error implements error.
func (e *TenantError) Error() string {
	where := ""
	if e.Header != "" {
		where = " in header " + e.Header
	}
	return fmt.Sprintf("invalid tenant ID %q%s: %s", e.ID, where, e.Rule)
}

// Is makes errors.Is(err, ErrBadRequest) true.
func (e *TenantError) Is(target error) bool { return target == ErrBadRequest }

// ValidateTenantID checks id against the rules Mimir documents for tenant
// IDs, so an ID promgov accepts is one any Prometheus-compatible backend
// accepts, travels safely in a gRPC header and a metric label, and names a
// file or object safely: at most 150 bytes of ASCII letters, digits and
// ! - _ . * ' ( ), and not "." or "..".
func ValidateTenantID(id string) error {
	switch {
	case len(id) > MaxTenantIDLength:
		return &TenantError{ID: truncate(id, 32), Rule: fmt.Sprintf("longer than %d bytes (%d)", MaxTenantIDLength, len(id))}
	case id == "." || id == "..":
		return &TenantError{ID: id, Rule: `"." and ".." are not allowed`}
	}
	for i := 0; i < len(id); i++ {
		if !tenantByte(id[i]) {
			return &TenantError{ID: strings.ToValidUTF8(truncate(id, 32), "\uFFFD"),
				Rule: fmt.Sprintf("byte %d (0x%02x) is not allowed; use letters, digits and ! - _ . * ' ( )", i, id[i])}
		}
	}
	return nil
}

func tenantByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!-_.*'()", c) >= 0
}

// Tenant returns the tenant named by the configured tenant header, or the
// default tenant when the header is absent or blank. An ID that breaks the
// tenant rules is a *TenantError (400), never passed on.
func (d *Decoder) Tenant(r *http.Request) (string, error) {
	t := strings.TrimSpace(r.Header.Get(d.cfg.TenantHeader))
	if t == "" {
		return d.cfg.DefaultTenant, nil
	}
	if err := ValidateTenantID(t); err != nil {
		err.(*TenantError).Header = d.cfg.TenantHeader
		return "", err
	}
	return t, nil
}
