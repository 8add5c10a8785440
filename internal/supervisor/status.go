package supervisor

import (
	"maps"
	"time"
)

// ExitInfo describes how a process ended.
type ExitInfo struct {
	PID    int
	Code   int    // exit status; -1 when a signal ended it
	Signal string // the signal's name, or ""
	Cause  ExitCause
	Time   time.Time // when it was reaped
}

// PoolStatus is a snapshot of a pool, for status pages.
type PoolStatus struct {
	// State is "stopped" (no process; always so while halted, once the
	// processes are gone), "starting", "ready" (at least one process
	// ready), "draining" (only processes being drained or stopped),
	// "backing-off" (starts refused by the rapid-fail limit) or "failed"
	// (the last start failed and nothing runs).
	State     string
	Processes []ProcessInfo
	// Starts counts processes spawned; Crashes counts ready processes that
	// exited on their own (each is restarted on the next request).
	Starts  int
	Crashes int
	// Queued counts Acquire calls waiting for a process.
	Queued int
	// LastExit is the last process that ended; zero if none has.
	LastExit ExitInfo
	// LastStartError is the last failed start's error ("" if none) and
	// LastStartErrorAt when it happened.
	LastStartError   string
	LastStartErrorAt time.Time
	// RetryAfter is how long starts are still refused by the rapid-fail
	// limit; 0 when they are not.
	RetryAfter time.Duration
	// Recycles counts the recycles each recycling condition caused (see
	// RecycleCounts); nil when there were none.
	Recycles map[string]int64 `json:",omitempty"`
}

// Status returns a snapshot of the pool. It starts nothing and does not
// count as use for IdleTimeout.
func (p *Pool) Status() PoolStatus {
	procs := p.Processes()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PoolStatus{
		Processes: procs,
		Starts:    p.starts,
		Crashes:   p.crashes,
		Queued:    p.waiters,
		LastExit:  p.lastExit,
		Recycles:  maps.Clone(p.pol.counts),
	}
	if p.startErr != nil {
		st.LastStartError = p.startErr.Error()
		st.LastStartErrorAt = p.startErrAt
	}
	now := p.now()
	backingOff := false
	if w := p.fails; !w.start.IsZero() && now.Sub(w.start) < failWindowLength && w.count > p.spec.RapidFailsPerMinute {
		st.RetryAfter = w.start.Add(failWindowLength).Sub(now)
		backingOff = true
	}
	ready, starting, leaving := 0, 0, 0
	for _, pr := range procs {
		switch pr.State {
		case "ready":
			ready++
		case "starting":
			starting++
		default:
			leaving++
		}
	}
	switch {
	case ready > 0:
		st.State = "ready"
	case starting > 0:
		st.State = "starting"
	case leaving > 0:
		st.State = "draining"
	case p.halted:
		st.State = "stopped"
	case backingOff:
		st.State = "backing-off"
	case p.startErr != nil && p.lastFailedLocked():
		st.State = "failed"
	default:
		st.State = "stopped"
	}
	return st
}

// lastFailedLocked reports whether the last start attempt failed: no
// process became ready after the last failed start.
func (p *Pool) lastFailedLocked() bool {
	return !p.lastReady.After(p.startErrAt)
}
