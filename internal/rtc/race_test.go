//go:build race

package rtc

// raceEnabled: under the race detector sync.Pool drops items on purpose
// (x/net's sendmmsg path uses one), so allocation counts mean nothing;
// scripts/test.sh runs the allocation tests in a normal build too.
const raceEnabled = true
