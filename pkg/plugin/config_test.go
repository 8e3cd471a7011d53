package plugin

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg     Config
		message string // "" valid
	}{
		"minimal":           {cfg: Config{Module: "x.wasm"}},
		"full":              {cfg: Config{Module: "x.wasm", Config: "{}", OnError: OnErrorDrop, MaxMemoryPages: 1024, Timeout: model.Duration(time.Second), MaxInstances: 4}},
		"no module":         {cfg: Config{}, message: "module: empty; set the path"},
		"bad on_error":      {cfg: Config{Module: "x", OnError: "ignore"}, message: `on_error: "ignore" is not keep or drop`},
		"too much memory":   {cfg: Config{Module: "x", MaxMemoryPages: 70000}, message: "max_memory_pages: 70000 is over wasm32's 65536"},
		"negative timeout":  {cfg: Config{Module: "x", Timeout: -1}, message: "timeout: "},
		"negative instance": {cfg: Config{Module: "x", MaxInstances: -1}, message: "max_instances: -1 is negative"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.message == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.message)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var cfg Config
	require.NoError(t, yaml.Unmarshal([]byte("module: a.wasm\nconfig: '{\"teams\": [\"core\"]}'\n"), &cfg))
	cfg = cfg.withDefaults()
	require.Equal(t, Config{Module: "a.wasm", Config: `{"teams": ["core"]}`, OnError: OnErrorKeep,
		MaxMemoryPages: DefaultMaxMemoryPages, Timeout: model.Duration(DefaultTimeout)}, cfg)
}

// FuzzConfigYAML: decoding and validating a plugin configuration never
// panics, and a valid one keeps valid defaults.
func FuzzConfigYAML(f *testing.F) {
	f.Add([]byte("module: a.wasm\non_error: drop\ntimeout: 250ms\nmax_memory_pages: 512\n"))
	f.Add([]byte("module: ''\n"))
	f.Add([]byte("timeout: -1s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if yaml.Unmarshal(data, &cfg) != nil || cfg.Validate() != nil {
			return
		}
		d := cfg.withDefaults()
		require.NoError(t, d.Validate())
		require.Positive(t, d.Timeout)
		require.Positive(t, d.MaxMemoryPages)
	})
}
