package supervisor

import "time"

// The readiness poll: a fast app is found within half a millisecond of
// listening, a slow one costs a few percent more start time and a handful
// of probes per second (ANCM polls every 250 ms; Gatehouse used to poll
// every 50 ms, which added ~25 ms to every cold start and restart).
const (
	probeMin = 500 * time.Microsecond // first waits between probes
	probeMax = 25 * time.Millisecond  // the wait never grows past this
	// probeGrowth: after waiting elapsed, the next probe comes elapsed/probeGrowth
	// later, so an app is found at most ~3% (plus probeMin) after it listens.
	probeGrowth = 32
)

// probeDelay returns how long to wait before the next readiness probe of a
// process that has been starting for elapsed: probeMin for the first 16 ms,
// then elapsed/32, and never more than probeMax. A failed probe is a refused
// loopback connect (tens of µs), so polling fast early costs little.
func probeDelay(elapsed time.Duration) time.Duration {
	return min(max(elapsed/probeGrowth, probeMin), probeMax)
}
