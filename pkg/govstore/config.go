package govstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/s3"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/usage"
)

// Store backends.
const (
	BackendNone       = ""
	BackendFilesystem = "filesystem"
	BackendS3         = "s3"
	// BackendGCS and BackendAzure need a build with the cloud SDKs
	// (-tags cloudstores, make build-cloud).
	BackendGCS   = "gcs"
	BackendAzure = "azure"
)

// File modes: what a reload does with the governance sections of the file
// once the store has versions.
const (
	// FileModeStore: the file is only the seed of an empty store; later
	// edits of its governance sections are ignored (and logged): the store
	// wins.
	FileModeStore = "store"
	// FileModeGitOps: a reload whose governance sections differ from the
	// active version writes them as a new version (author "gitops").
	FileModeGitOps = "gitops"
)

// Config is the `governance:` section: where the versions live and how the
// file relates to them.
type Config struct {
	// Backend is "" (no store: the file's governance sections apply, as
	// before), filesystem or s3.
	Backend string `yaml:"backend"`
	// Filesystem is the filesystem backend's directory.
	Filesystem FilesystemConfig `yaml:"filesystem"`
	// S3 is the s3 backend's bucket (objstore's S3 settings).
	S3 S3Config `yaml:"s3"`
	// GCS is the gcs backend's bucket.
	GCS GCSConfig `yaml:"gcs"`
	// Azure is the azure backend's container.
	Azure AzureConfig `yaml:"azure"`
	// FileMode is store or gitops (see the constants).
	FileMode string `yaml:"file_mode"`
	// PollInterval is how often a node reads the store when no gossip
	// notice arrived (the fallback of the rollout).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one store operation.
	Timeout time.Duration `yaml:"timeout"`
	// AutoRollback rolls back a newly active version that drops too much.
	AutoRollback AutoRollbackConfig `yaml:"auto_rollback"`
	// AutoPropose proposes suggestions on an interval.
	AutoPropose AutoProposeConfig `yaml:"auto_propose"`
}

// AutoProposeConfig is `governance.auto_propose`: every Interval, the
// usage suggestions of the enabled Kinds that save at least MinSeriesSaved
// series and were never proposed are proposed, at most MaxPerRun at a
// time, the biggest saving first. A proposal is a shadow version: every
// node runs it in shadow, and nothing is enforced until a person promotes
// it. Off unless both Interval and Kinds are set.
type AutoProposeConfig struct {
	// Interval is how often the suggestions are looked at; 0 is off.
	Interval time.Duration `yaml:"interval"`
	// Kinds are the suggestion kinds proposed (drop_metrics, labeldrop,
	// labeldrop_metric, aggregation, limit_aggregation); none is proposed
	// unless listed.
	Kinds []string `yaml:"kinds"`
	// MaxPerRun bounds the proposals written per interval.
	MaxPerRun int `yaml:"max_per_run"`
	// MinSeriesSaved is the least a suggestion must save to be proposed.
	MinSeriesSaved uint64 `yaml:"min_series_saved"`
}

// Enabled reports whether suggestions are proposed automatically.
func (a AutoProposeConfig) Enabled() bool { return a.Interval > 0 && len(a.Kinds) > 0 }

// AutoRollbackConfig is `governance.auto_rollback`: each distributor
// watches a newly active version for Window and rolls it back when the
// share of the samples it receives that the governance drops (rules and
// drop_unused) rose by more than MaxDropShare over the share the previous
// version dropped, once MinSamples were received.
type AutoRollbackConfig struct {
	// MaxDropShare is the largest tolerated rise of the dropped share
	// (0.2: 20 points); 0 turns automatic rollback off.
	MaxDropShare float64 `yaml:"max_drop_share"`
	// Window is how long after it becomes active a version is watched.
	Window time.Duration `yaml:"window"`
	// MinSamples is how many samples a distributor must receive under the
	// new version before it judges it.
	MinSamples uint64 `yaml:"min_samples"`
}

// SuggestionKinds are the kinds governance.auto_propose.kinds may name
// (usage.Suggestion.Kind).
var SuggestionKinds = []string{usage.SuggestDropMetrics, usage.SuggestLabelDrop, usage.SuggestMetricLabelDrop, usage.SuggestAggregation, usage.SuggestLimitAggregation}

func (a AutoProposeConfig) validate() error {
	if a.Interval < 0 {
		return fmt.Errorf("governance.auto_propose.interval: %s is negative; use 0 (off) or e.g. 1h", a.Interval)
	}
	for _, k := range a.Kinds {
		if !slices.Contains(SuggestionKinds, k) {
			return fmt.Errorf("governance.auto_propose.kinds: %q is not a suggestion kind; use some of %s", k, strings.Join(SuggestionKinds, ", "))
		}
	}
	if a.Enabled() && a.MaxPerRun < 1 {
		return fmt.Errorf("governance.auto_propose.max_per_run: %d must be at least 1 when auto_propose is on", a.MaxPerRun)
	}
	return nil
}

// FilesystemConfig is a local directory.
type FilesystemConfig struct {
	Directory string `yaml:"directory"`
}

// S3Config is an S3 bucket, with objstore's keys. Without an access key the
// credentials come from the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY), the AWS credentials file, or the instance's IAM
// role, in that order (objstore's chain).
type S3Config struct {
	Bucket    string `yaml:"bucket"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// SecretKeyFile holds the secret key (e.g. a mounted Kubernetes
	// Secret), read when the bucket is opened, so it appears neither in the
	// file nor in the process's arguments.
	SecretKeyFile string `yaml:"secret_key_file"`
	Insecure      bool   `yaml:"insecure"`
}

// GCSConfig is a Google Cloud Storage bucket. Without a service account
// file the credentials are Google's application default credentials
// (GOOGLE_APPLICATION_CREDENTIALS, the metadata server, ...);
// STORAGE_EMULATOR_HOST points the client at an emulator.
type GCSConfig struct {
	Bucket string `yaml:"bucket"`
	// ServiceAccountFile holds the service account's JSON key, read when
	// the store is opened.
	ServiceAccountFile string `yaml:"service_account_file"`
}

// AzureConfig is an Azure Blob Storage container. Credentials: the account
// key from AccountKeyFile, or a connection string from
// ConnectionStringFile, else the environment's (managed identity, ...).
type AzureConfig struct {
	StorageAccount       string `yaml:"storage_account"`
	AccountKeyFile       string `yaml:"storage_account_key_file"`
	ConnectionStringFile string `yaml:"storage_connection_string_file"`
	Container            string `yaml:"container"`
	// Endpoint is the blob service's domain (default blob.core.windows.net).
	Endpoint string `yaml:"endpoint"`
	// CreateContainer creates the container when it does not exist.
	CreateContainer bool `yaml:"create_container"`
}

// readSecret reads a secret file (trimmed); "" for no file.
func readSecret(field, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// objstoreS3 is the part of S3Config objstore reads (it refuses unknown
// keys).
type objstoreS3 struct {
	Bucket    string `yaml:"bucket"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Insecure  bool   `yaml:"insecure"`
}

// RegisterFlags registers the flags under prefix (e.g. "governance.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.Backend, prefix+"store.backend", "", "Versioned governance store: filesystem, s3, or (builds with -tags cloudstores) gcs or azure; empty keeps the governance sections in the configuration file only.")
	fs.StringVar(&c.Filesystem.Directory, prefix+"store.filesystem.directory", "data/governance", "Directory of the filesystem governance store.")
	fs.StringVar(&c.S3.Bucket, prefix+"store.s3.bucket", "", "S3 bucket of the governance store.")
	fs.StringVar(&c.S3.Endpoint, prefix+"store.s3.endpoint", "", "S3 endpoint (host:port) of the governance store.")
	fs.StringVar(&c.S3.Region, prefix+"store.s3.region", "", "S3 region of the governance store.")
	fs.StringVar(&c.S3.AccessKey, prefix+"store.s3.access-key", "", "S3 access key of the governance store.")
	fs.StringVar(&c.S3.SecretKey, prefix+"store.s3.secret-key", "", "S3 secret key of the governance store (prefer --governance.store.s3.secret-key-file).")
	fs.StringVar(&c.S3.SecretKeyFile, prefix+"store.s3.secret-key-file", "", "File holding the S3 secret key of the governance store, read when the store is opened. Without an access key, credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the AWS credentials file or IAM.")
	fs.BoolVar(&c.S3.Insecure, prefix+"store.s3.insecure", false, "Use HTTP instead of HTTPS for the S3 endpoint.")
	fs.StringVar(&c.GCS.Bucket, prefix+"store.gcs.bucket", "", "GCS bucket of the governance store (builds with -tags cloudstores).")
	fs.StringVar(&c.GCS.ServiceAccountFile, prefix+"store.gcs.service-account-file", "", "File holding the GCS service account's JSON key; empty uses the application default credentials.")
	fs.StringVar(&c.Azure.StorageAccount, prefix+"store.azure.storage-account", "", "Azure storage account of the governance store (builds with -tags cloudstores).")
	fs.StringVar(&c.Azure.AccountKeyFile, prefix+"store.azure.storage-account-key-file", "", "File holding the Azure storage account key.")
	fs.StringVar(&c.Azure.ConnectionStringFile, prefix+"store.azure.storage-connection-string-file", "", "File holding an Azure storage connection string (instead of account and key).")
	fs.StringVar(&c.Azure.Container, prefix+"store.azure.container", "", "Azure blob container of the governance store.")
	fs.StringVar(&c.Azure.Endpoint, prefix+"store.azure.endpoint", "", "Azure blob service domain; empty is blob.core.windows.net.")
	fs.BoolVar(&c.Azure.CreateContainer, prefix+"store.azure.create-container", false, "Create the Azure container when it does not exist.")
	fs.StringVar(&c.FileMode, prefix+"file-mode", FileModeStore, "What reloads do with the file's governance sections once the store has versions: store (the file only seeds an empty store; the store wins) or gitops (a changed file becomes a new version).")
	fs.DurationVar(&c.PollInterval, prefix+"poll-interval", 10*time.Second, "How often nodes read the governance store besides the gossip notices.")
	fs.DurationVar(&c.Timeout, prefix+"timeout", 10*time.Second, "Timeout of one governance store operation.")
	fs.Float64Var(&c.AutoRollback.MaxDropShare, prefix+"auto-rollback.max-drop-share", 0, "Roll a newly active version back when the share of received samples the governance drops rises by more than this (0.2: 20 points) over the previous version's; 0 is off.")
	fs.DurationVar(&c.AutoRollback.Window, prefix+"auto-rollback.window", 10*time.Minute, "How long after it becomes active a version is watched for automatic rollback.")
	fs.Uint64Var(&c.AutoRollback.MinSamples, prefix+"auto-rollback.min-samples", 10000, "Samples a distributor must receive under a new version before judging it for automatic rollback.")
	fs.DurationVar(&c.AutoPropose.Interval, prefix+"auto-propose.interval", 0, "How often suggestions of the kinds in --governance.auto-propose.kinds are proposed (as shadow versions, never promoted); 0 is off.")
	fs.Func(prefix+"auto-propose.kinds", "Comma-separated suggestion kinds proposed automatically (drop_metrics, labeldrop, labeldrop_metric, aggregation, limit_aggregation); none by default.", func(v string) error {
		c.AutoPropose.Kinds = nil
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.AutoPropose.Kinds = append(c.AutoPropose.Kinds, k)
			}
		}
		return nil
	})
	fs.IntVar(&c.AutoPropose.MaxPerRun, prefix+"auto-propose.max-per-run", 1, "Most suggestions proposed automatically per interval.")
	fs.Uint64Var(&c.AutoPropose.MinSeriesSaved, prefix+"auto-propose.min-series-saved", 100, "Least series a suggestion must save to be proposed automatically.")
}

// Enabled reports whether a store is configured.
func (c *Config) Enabled() bool { return c.Backend != BackendNone }

// Validate checks the section; errors name the field and the fix.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendNone:
		return nil
	case BackendFilesystem:
		if c.Filesystem.Directory == "" {
			return errors.New("governance.filesystem.directory: must name a directory, e.g. data/governance")
		}
	case BackendS3:
		if c.S3.Bucket == "" || c.S3.Endpoint == "" {
			return errors.New("governance.s3: bucket and endpoint are required, e.g. --governance.store.s3.bucket=promgov --governance.store.s3.endpoint=s3.example.com")
		}
		if c.S3.SecretKey != "" && c.S3.SecretKeyFile != "" {
			return errors.New("governance.s3: secret_key and secret_key_file are both set; keep only secret_key_file")
		}
	case BackendGCS:
		if c.GCS.Bucket == "" {
			return errors.New("governance.gcs.bucket: required, e.g. --governance.store.gcs.bucket=promgov")
		}
	case BackendAzure:
		if c.Azure.Container == "" {
			return errors.New("governance.azure.container: required, e.g. --governance.store.azure.container=promgov")
		}
		if c.Azure.StorageAccount == "" {
			return errors.New("governance.azure.storage_account: required (with storage_account_key_file, storage_connection_string_file or the environment's identity)")
		}
		if c.Azure.AccountKeyFile != "" && c.Azure.ConnectionStringFile != "" {
			return errors.New("governance.azure: storage_account_key_file and storage_connection_string_file are both set; keep one")
		}
	default:
		return fmt.Errorf("governance.backend: unknown backend %q; use filesystem, s3, gcs or azure", c.Backend)
	}
	if c.FileMode != FileModeStore && c.FileMode != FileModeGitOps {
		return fmt.Errorf("governance.file_mode: unknown mode %q; use store or gitops", c.FileMode)
	}
	if c.PollInterval <= 0 {
		return errors.New("governance.poll_interval: must be > 0, e.g. 10s")
	}
	if c.Timeout <= 0 {
		return errors.New("governance.timeout: must be > 0, e.g. 10s")
	}
	if err := c.AutoPropose.validate(); err != nil {
		return err
	}
	if a := c.AutoRollback; a.MaxDropShare < 0 || a.MaxDropShare > 1 {
		return fmt.Errorf("governance.auto_rollback.max_drop_share: %g is not a share; use 0 (off) to 1, e.g. 0.2", a.MaxDropShare)
	} else if a.MaxDropShare > 0 && a.Window <= 0 {
		return errors.New("governance.auto_rollback.window: must be > 0 when max_drop_share is set, e.g. 10m")
	}
	return nil
}

// OpenBucket opens the configured bucket.
func (c *Config) OpenBucket() (objstore.Bucket, error) {
	switch c.Backend {
	case BackendFilesystem:
		return filesystem.NewBucket(c.Filesystem.Directory)
	case BackendS3:
		o := objstoreS3{Bucket: c.S3.Bucket, Endpoint: c.S3.Endpoint, Region: c.S3.Region,
			AccessKey: c.S3.AccessKey, SecretKey: c.S3.SecretKey, Insecure: c.S3.Insecure}
		if c.S3.SecretKeyFile != "" {
			key, err := readSecret("governance.s3.secret_key_file", c.S3.SecretKeyFile)
			if err != nil {
				return nil, err
			}
			o.SecretKey = key
		}
		conf, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		return s3.NewBucket(log.NewNopLogger(), conf, "promgov-governance", nil)
	case BackendGCS, BackendAzure:
		return c.openCloud()
	}
	return nil, fmt.Errorf("governance.backend: no store configured")
}

// Open opens the configured store.
func (c *Config) Open() (*Store, error) {
	b, err := c.OpenBucket()
	if err != nil {
		return nil, fmt.Errorf("open governance store (%s): %w", c.Backend, err)
	}
	return New(b), nil
}

// Seed writes doc as version 1 when the store is empty (author names the
// file). It returns the version written, or nil when the store already had
// versions (another node seeded it, or it was seeded before).
func (s *Store) Seed(ctx context.Context, body []byte, author string) (*Version, error) {
	head, err := s.Head(ctx)
	if err != nil || head > 0 {
		return nil, err
	}
	v, err := s.Write(ctx, WriteRequest{Body: body, IfMatch: 0, Author: author, Message: "seed from the configuration file"})
	var ce *ConflictError
	if errors.As(err, &ce) {
		return nil, nil // seeded by another node (claims that collided are an UnavailableError: retried)
	}
	return v, err
}
