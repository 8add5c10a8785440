package supervisor

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// failWindow is the rapid-fail limit (rapidFailsPerMinute): failures (crashes of
// ready processes and failed starts) are counted in a fixed one-minute
// window that begins at the first check or failure after the previous
// window ended (it is reset lazily, not sliding); while the count exceeds
// the limit, starts are refused until the window ends.
//
// The zero value is an empty window. It is not safe for concurrent use: the
// Pool guards it with its lock. Times are passed in so the window has no
// clock of its own.
type failWindow struct {
	start   time.Time // zero: no window yet
	count   int       // failures since start
	last    string    // the last failure, for RapidFailError.LastExit
	refused time.Time // start of the window in which a refusal was last reported
}

// failWindowLength is the length of the window.
const failWindowLength = time.Minute

// roll begins a new window at now if none is open.
func (w *failWindow) roll(now time.Time) {
	if w.start.IsZero() || now.Sub(w.start) >= failWindowLength {
		w.start, w.count = now, 0
	}
}

// admit reports whether a start may be tried at now under limit. If not,
// it returns the error for callers, and first is true for the first refusal
// in this window (so it is logged once).
func (w *failWindow) admit(now time.Time, limit int) (refusal *upstream.RapidFailError, first bool) {
	w.roll(now)
	if w.count <= limit {
		return nil, false
	}
	first = !w.refused.Equal(w.start)
	w.refused = w.start
	return w.refusal(now, limit), first
}

// record counts a failure at now, described by desc (e.g. "pid 12 exited
// with code 1 after 2s"). It returns the refusal when this failure took the
// count past limit, else nil.
func (w *failWindow) record(now time.Time, limit int, desc string) *upstream.RapidFailError {
	w.roll(now)
	w.count++
	w.last = desc
	if w.count != limit+1 {
		return nil
	}
	return w.refusal(now, limit)
}

func (w *failWindow) refusal(now time.Time, limit int) *upstream.RapidFailError {
	return &upstream.RapidFailError{
		Limit:      limit,
		RetryAfter: w.start.Add(failWindowLength).Sub(now),
		LastExit:   w.last,
	}
}
