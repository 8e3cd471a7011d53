package grafana

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxDecompressed bounds gzipJson payloads of GrafanaDashboard objects.
const maxDecompressed = 64 << 20

// LoadDocument parses one file's content: dashboard JSON (plain or wrapped),
// or YAML holding Kubernetes ConfigMaps, GrafanaDashboard objects or Lists of
// them (multi-document YAML is supported). name is used for error messages
// and to pick the format (".json" is tried as JSON first).
func LoadDocument(name string, data []byte) ([]*Dashboard, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		d, err := ParseDashboard(trimmed)
		if err == nil {
			return []*Dashboard{d}, nil
		}
		if strings.HasSuffix(name, ".json") {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Dashboard
	var errs []error
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%s: decode yaml: %w", name, err)
		}
		ds, err := fromObject(doc)
		out = append(out, ds...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNotDashboard)
	}
	return out, errors.Join(errs...)
}

// fromObject extracts dashboards from a decoded Kubernetes object.
func fromObject(doc map[string]any) ([]*Dashboard, error) {
	if doc == nil {
		return nil, nil
	}
	switch str(doc["kind"]) {
	case "List", "ConfigMapList", "GrafanaDashboardList":
		items, _ := doc["items"].([]any)
		var out []*Dashboard
		var errs []error
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				ds, err := fromObject(m)
				out = append(out, ds...)
				errs = append(errs, err)
			}
		}
		return out, errors.Join(errs...)
	case "ConfigMap":
		data, _ := doc["data"].(map[string]any)
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []*Dashboard
		var errs []error
		for _, k := range keys {
			s := str(data[k])
			if !strings.HasSuffix(k, ".json") && !strings.HasPrefix(strings.TrimSpace(s), "{") {
				continue
			}
			d, err := ParseDashboard([]byte(s))
			if errors.Is(err, ErrNotDashboard) && !strings.HasSuffix(k, ".json") {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("configmap key %s: %w", k, err))
				continue
			}
			out = append(out, d)
		}
		return out, errors.Join(errs...)
	case "GrafanaDashboard":
		spec, _ := doc["spec"].(map[string]any)
		if js := str(spec["json"]); js != "" {
			d, err := ParseDashboard([]byte(js))
			if err != nil {
				return nil, fmt.Errorf("GrafanaDashboard spec.json: %w", err)
			}
			return []*Dashboard{d}, nil
		}
		if gz := str(spec["gzipJson"]); gz != "" {
			js, err := gunzipBase64(gz)
			if err != nil {
				return nil, fmt.Errorf("GrafanaDashboard spec.gzipJson: %w", err)
			}
			d, err := ParseDashboard(js)
			if err != nil {
				return nil, fmt.Errorf("GrafanaDashboard spec.gzipJson: %w", err)
			}
			return []*Dashboard{d}, nil
		}
		if m, ok := spec["dashboard"].(map[string]any); ok {
			d, err := fromModel(m)
			if err != nil {
				return nil, fmt.Errorf("GrafanaDashboard spec.dashboard: %w", err)
			}
			return []*Dashboard{d}, nil
		}
		return nil, nil // url / grafanaCom sources are not fetched.
	}
	// A dashboard model written as YAML.
	d, err := fromModel(doc)
	if err != nil {
		return nil, err
	}
	return []*Dashboard{d}, nil
}

func gunzipBase64(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxDecompressed))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out, nil
}

// LoadPath loads dashboards from a file or, recursively, from every .json,
// .yaml and .yml file under a directory. Files that hold no dashboard are
// skipped; other per-file problems are returned joined, alongside whatever
// loaded.
func LoadPath(path string) ([]*Dashboard, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat dashboards path: %w", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read dashboard file: %w", err)
		}
		return LoadDocument(path, data)
	}
	var out []*Dashboard
	var errs []error
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() || !isDashboardFile(p) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read dashboard file: %w", err))
			return nil
		}
		ds, err := LoadDocument(p, data)
		out = append(out, ds...)
		if err != nil && !errors.Is(err, ErrNotDashboard) {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func isDashboardFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}
