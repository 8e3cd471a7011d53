//go:build !race

package distributor

// raceEnabled is true when tests run with -race.
const raceEnabled = false
