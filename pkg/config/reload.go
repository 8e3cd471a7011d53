package config

import (
	"reflect"
	"slices"
	"strings"
)

// usedFields are the sections and fields role reads, as YAML paths.
func usedFields(role Role) []string {
	switch role {
	case RoleDistributor:
		return []string{"log_level", "log_format", "web", "auth", "ingester_client", "rate_limits", "memberlist", "cluster", "distributor",
			"rules", "rules_name_validation_scheme", "rules_tag_label", "rules_type_cache_size", "rules_test_max_body_bytes", "usage", "governance", "retrospective", "backend.url",
			"aggregations"} // shown by the rules test API
	case RoleIngester:
		return []string{"log_level", "log_format", "web", "auth", "ingester_client", "memberlist", "cluster", "ingester", "backend", "backends", "forward", "wal",
			"cardinality", "usage.queries.max_metrics", "usage.queries.max_users_per_metric",
			"usage.queries.snapshot_path", "usage.queries.snapshot_interval", "governance", "preview_reservoir", "retrospective",
			"aggregations", "aggregations_snapshot_path", "aggregations_max_groups", "aggregations_overflow_interval", "aggregations_overflow_max_delay"}
	}
	return nil
}

// ReloadableFields are the fields a reload (SIGHUP, POST /-/reload) of
// role applies without a restart, as YAML paths; every other field it
// reads takes effect at its next start. docs/operations.md lists the same.
func ReloadableFields(role Role) []string {
	switch role {
	case RoleDistributor:
		return []string{"log_level", "auth", "rate_limits", "rules", "rules_name_validation_scheme", "rules_tag_label", "rules_test_max_body_bytes",
			"usage.load_timeout", "usage.dashboards", "usage.rules", "usage.queries.log_files", "usage.drop_unused", "aggregations"}
	case RoleIngester:
		return []string{"log_level", "auth", "cardinality.limits",
			"aggregations", "aggregations_max_groups", "aggregations_overflow_interval", "aggregations_overflow_max_delay"}
	}
	return nil
}

// RestartFields lists, as YAML paths, the fields role reads whose value
// differs between running and next but which a reload does not apply:
// they need a restart to take effect.
func RestartFields(running, next Binary) []string {
	role := running.Role()
	var changed []string
	diffFields("", reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem(), &changed)
	var out []string
	for _, f := range changed {
		if covers(usedFields(role), f) && !covers(ReloadableFields(role), f) {
			out = append(out, f)
		}
	}
	return out
}

// covers reports whether field is one of paths or inside one of them.
func covers(paths []string, field string) bool {
	return slices.ContainsFunc(paths, func(p string) bool { return field == p || strings.HasPrefix(field, p+".") })
}

// diffFields appends the YAML paths of the leaves that differ between a
// and b (values of the same type). Structs are walked by their yaml tags
// (inline fields keep the prefix); anything else is compared whole.
func diffFields(prefix string, a, b reflect.Value, out *[]string) {
	if a.Kind() != reflect.Struct || a.Type().NumField() == 0 || !hasYAMLTags(a.Type()) {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, prefix)
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || f.Type == foreignType {
			continue
		}
		path := prefix
		if !strings.Contains(opts, "inline") {
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if path != "" {
				path += "."
			}
			path += name
		}
		diffFields(path, a.Field(i), b.Field(i), out)
	}
}

// foreignType is the other binary's sections, which a binary does not
// read.
var foreignType = reflect.TypeFor[Foreign]()

// hasYAMLTags reports whether a struct type describes a YAML section
// (rather than a value such as a time or a regexp).
func hasYAMLTags(t reflect.Type) bool {
	for i := range t.NumField() {
		if _, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			return true
		}
	}
	return false
}
