//go:build cloudstores

package govstore

import (
	"context"

	"github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/gcs"
	"gopkg.in/yaml.v3"
)

// CloudStores reports whether this build links the gcs and azure backends.
const CloudStores = true

// objstoreGCS and objstoreAzure are the parts of objstore's configurations
// promgov sets.
type objstoreGCS struct {
	Bucket         string `yaml:"bucket"`
	ServiceAccount string `yaml:"service_account,omitempty"`
}

type objstoreAzure struct {
	StorageAccountName      string `yaml:"storage_account,omitempty"`
	StorageAccountKey       string `yaml:"storage_account_key,omitempty"`
	StorageConnectionString string `yaml:"storage_connection_string,omitempty"`
	StorageCreateContainer  bool   `yaml:"storage_create_container"`
	ContainerName           string `yaml:"container"`
	Endpoint                string `yaml:"endpoint,omitempty"`
}

// openCloud opens the gcs or azure bucket of c.
func (c *Config) openCloud() (objstore.Bucket, error) {
	if c.Backend == BackendGCS {
		sa, err := readSecret("governance.gcs.service_account_file", c.GCS.ServiceAccountFile)
		if err != nil {
			return nil, err
		}
		conf, err := yaml.Marshal(objstoreGCS{Bucket: c.GCS.Bucket, ServiceAccount: sa})
		if err != nil {
			return nil, err
		}
		return gcs.NewBucket(context.Background(), log.NewNopLogger(), conf, "promgov-governance", nil)
	}
	key, err := readSecret("governance.azure.storage_account_key_file", c.Azure.AccountKeyFile)
	if err != nil {
		return nil, err
	}
	cs, err := readSecret("governance.azure.storage_connection_string_file", c.Azure.ConnectionStringFile)
	if err != nil {
		return nil, err
	}
	conf, err := yaml.Marshal(objstoreAzure{StorageAccountName: c.Azure.StorageAccount, StorageAccountKey: key,
		StorageConnectionString: cs, StorageCreateContainer: c.Azure.CreateContainer, ContainerName: c.Azure.Container, Endpoint: c.Azure.Endpoint})
	if err != nil {
		return nil, err
	}
	return azure.NewBucket(log.NewNopLogger(), conf, "promgov-governance", nil)
}
