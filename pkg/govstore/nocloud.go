//go:build !cloudstores

package govstore

import (
	"fmt"

	"github.com/thanos-io/objstore"
)

// CloudStores reports whether this build links the gcs and azure backends.
const CloudStores = false

// openCloud refuses: the gcs and azure backends are in builds with
// -tags cloudstores only. objstore's gcs and azure providers bring the
// Google and Azure SDKs, which add about 415 packages and 35 MB to each
// binary; the default build leaves them out.
func (c *Config) openCloud() (objstore.Bucket, error) {
	return nil, fmt.Errorf("governance.backend %s: this build has no %s store; build with -tags cloudstores (make build-cloud), or reach the bucket through its S3 API (GCS: endpoint storage.googleapis.com with an HMAC key)", c.Backend, c.Backend)
}
