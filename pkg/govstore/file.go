package govstore

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// DocumentFromFile extracts the governance sections of a whole
// configuration file (the other keys are ignored; the file was validated
// by config.Parse) over DefaultDocument, and returns it with its
// canonical body.
func DocumentFromFile(path string) (Document, []byte, error) {
	d := DefaultDocument()
	if path == "" {
		c, err := d.Canonical()
		return d, c, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Document{}, nil, fmt.Errorf("read --config.file: %w", err)
	}
	if err := yaml.Unmarshal(b, &d); err != nil {
		return Document{}, nil, fmt.Errorf("governance sections of %s: %w", path, err)
	}
	if err := d.Validate(); err != nil {
		return Document{}, nil, fmt.Errorf("governance sections of %s: %w", path, err)
	}
	c, err := d.Canonical()
	return d, c, err
}
