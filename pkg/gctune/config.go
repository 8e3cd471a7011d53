package gctune

import (
	"flag"
	"fmt"
)

// Config configures the Tuner (the binaries' gc section).
type Config struct {
	// Tune turns the headroom limit on (the default).
	Tune bool `yaml:"tune"`
	// HeadroomRatio is the headroom as a fraction of the live heap.
	HeadroomRatio float64 `yaml:"headroom_ratio"`
	// MinHeadroomBytes is the least headroom; below it GOGC alone governs
	// a heap of live bytes when live × GOGC/100 is smaller.
	MinHeadroomBytes int64 `yaml:"min_headroom_bytes"`
}

// DefaultConfig is the configuration without flags: on, 25 % of the live
// heap and at least 32 MiB.
func DefaultConfig() Config {
	return Config{Tune: true, HeadroomRatio: 0.25, MinHeadroomBytes: 32 << 20}
}

// RegisterFlags registers the flags under prefix (the binaries use "gc.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.BoolVar(&c.Tune, prefix+"tune", d.Tune, "Bound the heap's growth between garbage collections to max(gc.min-headroom-bytes, gc.headroom-ratio x the live heap), below GOGC's doubling once the heap is large. Off when the GOGC or GOMEMLIMIT environment variable is set.")
	fs.Float64Var(&c.HeadroomRatio, prefix+"headroom-ratio", d.HeadroomRatio, "With gc.tune, how much the heap may grow between collections, as a fraction of the heap the last one found live.")
	fs.Int64Var(&c.MinHeadroomBytes, prefix+"min-headroom-bytes", d.MinHeadroomBytes, "With gc.tune, the least the heap may grow between collections (GOGC governs smaller heaps).")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if !c.Tune {
		return nil
	}
	if c.HeadroomRatio <= 0 || c.HeadroomRatio > 1 {
		return fmt.Errorf("gc.headroom_ratio %g: use a fraction in (0, 1] (GOGC=100 is 1), or gc.tune: false", c.HeadroomRatio)
	}
	if c.MinHeadroomBytes < 4<<20 {
		return fmt.Errorf("gc.min_headroom_bytes %d: use at least 4194304 (4 MiB), or the collector may run back to back", c.MinHeadroomBytes)
	}
	return nil
}
