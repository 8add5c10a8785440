package supervisor

import (
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// EventKind names a step in the life of one app process.
type EventKind int

const (
	// ProcessStarted: the program was spawned. PID, Port and Command are set.
	ProcessStarted EventKind = iota + 1
	// ProcessReady: the process passed its readiness check and takes
	// requests. Took is the time since it was spawned.
	ProcessReady
	// ProcessRecycled: a replacement started by Recycle is ready and took
	// over the slot. PID is the replacement, Replaced the old process (0 when
	// the slot was empty).
	ProcessRecycled
	// StartFailed: a start failed. Err is the *upstream.StartError (PID is 0
	// when the program never ran). A start canceled by Stop or Close is not
	// a failure and sends no event.
	StartFailed
	// ProcessExited: the process was reaped. ExitCode or Signal say how it
	// ended, Took is its uptime and Cause why it ended.
	ProcessExited
	// RapidFailTripped: a failure took the count past RapidFailsPerMinute;
	// starts are refused until the window ends. Err is the
	// *upstream.RapidFailError the next Acquire gets.
	RapidFailTripped
	// RecycleConditionMet: a recycling condition of Spec.AppPool.Recycling
	// was met and the pool recycles itself (overlapped). Condition is its key
	// (ConditionTime, ConditionSchedule, ConditionRequests, ConditionPrivateMemory) and Detail
	// says what was measured. PID is the process that met it (0 for a
	// schedule).
	RecycleConditionMet
)

func (k EventKind) String() string {
	switch k {
	case ProcessStarted:
		return "started"
	case ProcessReady:
		return "ready"
	case ProcessRecycled:
		return "recycled"
	case StartFailed:
		return "start_failed"
	case ProcessExited:
		return "exited"
	case RapidFailTripped:
		return "rapid_fail_tripped"
	case RecycleConditionMet:
		return "recycle_condition_met"
	}
	return "unknown"
}

// ExitCause says why a process ended. The set is closed, so it can be a
// metric label.
type ExitCause string

const (
	// CauseCrash: a ready process exited on its own.
	CauseCrash ExitCause = "crash"
	// CauseStartFailure: the process exited while starting, or was killed
	// for not becoming ready within StartupTimeout.
	CauseStartFailure ExitCause = "start_failure"
	// CauseRecycle: replaced by Recycle, superseded by a newer Recycle, or
	// removed because Processes shrank.
	CauseRecycle ExitCause = "recycle"
	// CauseStop: stopped by Pool.Stop (app_offline.htm, gatehouse stop).
	CauseStop ExitCause = "stop"
	// CauseIdle: stopped after IdleTimeout without use.
	CauseIdle ExitCause = "idle"
	// CauseShutdown: stopped by Pool.Close.
	CauseShutdown ExitCause = "shutdown"
	// CauseOOM: the kernel's OOM killer ended the process at its cgroup's
	// memory limit (AppPool.Limits.Memory); Event.Detail says more. It
	// counts as a crash for the rapid-fail window.
	CauseOOM ExitCause = "oom"
)

// Event is one lifecycle transition of an app process, reported by the
// goroutine that owns the process once the Pool has applied it. Fields that
// do not apply to the Kind are zero.
type Event struct {
	Kind EventKind
	// App is Spec.Name.
	App string
	// Time is when the transition happened.
	Time time.Time
	// Slot is the process's position in the pool (0-based).
	Slot int
	// PID and Port of the process; PID is 0 if it never ran.
	PID  int
	Port int
	// Command is the command line run (ProcessStarted).
	Command string
	// Took is the startup time (ProcessReady) or the uptime (ProcessExited).
	Took time.Duration
	// ExitCode is the exit status (-1 when a signal ended the process);
	// Signal names the signal (ProcessExited).
	ExitCode int
	Signal   string
	// Cause is why the process ended (ProcessExited).
	Cause ExitCause
	// Replaced is the pid of the process a replacement took over from
	// (ProcessRecycled).
	Replaced int
	// Err is the failure (StartFailed, RapidFailTripped).
	Err error
	// Condition is the recycling condition met (RecycleConditionMet).
	Condition string
	// Detail is a sentence for the log: what the OOM kill hit
	// (ProcessExited with CauseOOM), what the recycling condition measured
	// (RecycleConditionMet).
	Detail string
}

// StartReason returns the short reason of a StartFailed event's error
// ("process exited during startup", "program not found", ...), or "".
func (e Event) StartReason() string {
	if se, ok := errors.AsType[*upstream.StartError](e.Err); ok {
		return se.Reason
	}
	return ""
}

// emit hands ev to the pool's log and to Spec.Events. It is called by a
// process's owner goroutine after the pool applied the transition, never
// under Pool.mu, so an observer may call the Pool's read methods.
func (p *Pool) emit(spec *Spec, ev Event) {
	ev.App = spec.Name
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	p.logEvent(ev)
	if spec.Events != nil {
		spec.Events(ev)
	}
}

// logEvent is the pool's own observer: one record per transition.
func (p *Pool) logEvent(ev Event) {
	switch ev.Kind {
	case ProcessStarted:
		p.log.Info("process started", "pid", ev.PID, "port", ev.Port, "command", ev.Command, "slot", ev.Slot)
	case ProcessReady:
		p.log.Info("process ready", "pid", ev.PID, "port", ev.Port, "took", ev.Took.Round(time.Millisecond))
	case ProcessRecycled:
		p.log.Info("process recycled", "pid", ev.PID, "replaced", ev.Replaced, "slot", ev.Slot)
	case StartFailed:
		if se, ok := errors.AsType[*upstream.StartError](ev.Err); ok && se.Output != "" {
			p.log.Error("app failed to start", "pid", ev.PID, "err", ev.Err, "output", se.Output)
		} else {
			p.log.Error("app failed to start", "pid", ev.PID, "err", ev.Err)
		}
	case ProcessExited:
		attrs := []any{"pid", ev.PID, "uptime", ev.Took.Round(time.Millisecond), "cause", string(ev.Cause)}
		if ev.Signal != "" {
			attrs = append(attrs, "signal", ev.Signal)
		} else {
			attrs = append(attrs, "exit_code", ev.ExitCode)
		}
		if ev.Detail != "" {
			attrs = append(attrs, "detail", ev.Detail)
		}
		switch ev.Cause {
		case CauseOOM:
			p.log.Error("process killed by the OOM killer; the next request starts a new one", attrs...)
		case CauseCrash:
			p.log.Warn("process exited unexpectedly; the next request starts a new one", attrs...)
		case CauseStartFailure:
			p.log.Warn("process exited during startup", attrs...)
		default:
			p.log.Info("process exited", attrs...)
		}
	case RecycleConditionMet:
		p.log.Info("recycle condition met; recycling the app", "condition", ev.Condition, "pid", ev.PID, "detail", ev.Detail)
	case RapidFailTripped:
		p.log.Error("rapid fail limit reached; not starting the app until the window ends", "err", ev.Err)
	}
}
