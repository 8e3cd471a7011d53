// Package govstore keeps promgov's governance configuration (the `rules:`
// list, `cardinality.limits` and `usage.drop_unused`) as a history of
// immutable versions in an object store reached through
// github.com/thanos-io/objstore: a local directory (filesystem, the
// single-node default) or an S3 bucket, the same buckets operators give
// Mimir, Loki and Thanos.
//
// Layout in the bucket (every object is written once and never changed):
//
//	versions/<number, 20 digits>.json   a Version: metadata and the YAML body
//	failed/<number, 20 digits>.json     a node rejected that version
//	claims/<number>/<random>            a writer's claim on the next number
//	rejected/<number, 20 digits>.json   a person rejected that shadow version
//	proposals/<number, 20 digits>.json  the suggestion and preview a proposal was written with
//
// Writes are optimistic: a write names the version it edits and fails with
// a *ConflictError carrying the current version when that is not the newest.
// Object stores have no compare-and-swap, so a writer first uploads a claim
// on the next number and lists the claims: it writes the version only when
// its claim is the only one (a writer that sees another claim backs off with
// a conflict). With a store that lists what it has written (S3, filesystem),
// two writers can never both win.
//
// A version whose object does not decode or whose body does not match its
// content hash is reported as corrupted and skipped, never applied.
package govstore
