// Package monoclock reads the monotonic clock alone. On linux time.Now
// reads two system clocks (the wall clock and the monotonic one, each a
// vDSO call); the timeouts, idle checks and durations that only compare
// instants of this process need the second alone. One base is shared by
// the front door, the proxy and the supervisor, so a reading taken by one
// means the same instant to the others.
package monoclock

import "time"

// base is the origin of Now's readings.
var base = time.Now()

// Now returns the monotonic clock's reading: the time since base, one
// clock read.
func Now() time.Duration { return time.Since(base) }

// Time returns reading d as a time.Time that carries it as its monotonic
// reading, for what uses that reading alone: deadlines
// (net.Conn.SetDeadline), Sub, Before and After against other times that
// carry one. Its wall clock reading is base's plus d, which is off from the
// wall clock at d by as much as the wall clock was set since: it is not a
// time of day to log.
func Time(d time.Duration) time.Time { return base.Add(d) }
