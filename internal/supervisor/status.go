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
	// State is one of:
	//   - "idle": no process; the next request (or Start) starts one;
	//   - "starting": a process is starting and none is ready;
	//   - "ready": at least one process is ready;
	//   - "recycling": a recycle is under way (new processes starting, old
	//     ones draining);
	//   - "draining": only processes being drained or stopped;
	//   - "stopped": halted by the operator (Halt) and no process is left;
	//   - "backing-off": starts refused by the rapid-fail limit (see
	//     RetryAfter, LastExit);
	//   - "failed": the last start failed (see LastStartError) and nothing
	//     runs; the next request tries again.
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
	case p.recycling.Load() > 0 && len(procs) > 0 && !p.halted:
		st.State = "recycling"
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
		st.State = "idle"
	}
	return st
}

// lastFailedLocked reports whether the last start attempt failed: no
// process became ready after the last failed start.
func (p *Pool) lastFailedLocked() bool {
	return !p.lastReady.After(p.startErrAt)
}
