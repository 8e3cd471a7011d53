//go:build race

package distributor

// raceEnabled is true when tests run with -race (which makes sync.Pool drop
// items, so allocation counts are meaningless).
const raceEnabled = true
