// Package govsync rolls the governance store's active version out to every
// node. A node that writes a version broadcasts "version N is active" over
// the memberlist gossip the ring already runs; every node then resolves the
// store (newest enforce version neither failed nor corrupted), fetches the
// body and applies it. Polling the store every --governance.poll-interval
// is the fallback when a notice is lost.
//
// A node that cannot apply a version keeps the one it runs, logs why and
// marks the version failed in the store, so every node resolves to the
// previous good version. Each node gossips its active version; the status
// API lists every member's version and which ones lag.
package govsync
