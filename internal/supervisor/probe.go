package supervisor

import "time"

// The readiness poll: a fast app is found within half a millisecond of
// listening, a slow one within ~1.6% of its start time (at most 10 ms).
// ANCM polls every 250 ms; Gatehouse polled every 50 ms, which added ~25 ms
// to every cold start and restart. A refused probe costs ~0.1 ms of CPU
// (connect, timer, wake-up), so the poll uses ~20% of a core for the first
// 32 ms of a start, then less and less, and 1% from 640 ms on.
const (
	probeMin = 500 * time.Microsecond // the first waits between probes
	probeMax = 10 * time.Millisecond  // the wait never grows past this
	// probeGrowth: after waiting elapsed, the next probe comes
	// elapsed/probeGrowth later.
	probeGrowth = 64
)

// probeDelay returns how long to wait before the next readiness probe of a
// process that has been starting for elapsed: probeMin for the first 32 ms,
// then elapsed/64, and never more than probeMax.
func probeDelay(elapsed time.Duration) time.Duration {
	return min(max(elapsed/probeGrowth, probeMin), probeMax)
}
