package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// eventLog collects a pool's events for a test.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() }

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// kinds returns "kind:pid" strings of the events about pid (all if 0).
func (l *eventLog) kinds(pid int) []string {
	var out []string
	for _, ev := range l.all() {
		if pid == 0 || ev.PID == pid {
			out = append(out, ev.Kind.String())
		}
	}
	return out
}

func (l *eventLog) find(kind EventKind) []Event {
	var out []Event
	for _, ev := range l.all() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestEventsCrashAndRecycle: a process's life is reported as typed events
// in order, from real children: started, ready, then a recycle (the
// replacement's started, ready, recycled; the old one's exit with cause
// recycle), then a crash (exit with cause crash and the exit code).
func TestEventsCrashAndRecycle(t *testing.T) {
	t.Parallel()
	var evs eventLog
	spec := helperSpec(t, "crash-after", "GH_N=2")
	spec.Events = evs.add
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)

	l1, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l1.Release()
	if err := f.pool.Recycle(ctx, nil); err != nil {
		t.Fatal(err)
	}
	l2, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second request makes it exit 1
		if _, err := get(t, l2.Addr, l2.Token, ""); err != nil {
			t.Fatal(err)
		}
	}
	l2.Release()
	<-l2.Exited
	if !waitFor(5*time.Second, func() bool { return len(evs.kinds(l2.PID)) == 4 }) {
		t.Fatalf("events of the crashing process: %v", evs.kinds(l2.PID))
	}

	if got, want := evs.kinds(l1.PID), []string{"started", "ready", "exited"}; !slices.Equal(got, want) {
		t.Errorf("events of the recycled process = %v, want %v", got, want)
	}
	if got, want := evs.kinds(l2.PID), []string{"started", "ready", "recycled", "exited"}; !slices.Equal(got, want) {
		t.Errorf("events of the replacement = %v, want %v", got, want)
	}
	exits := evs.find(ProcessExited)
	if len(exits) != 2 {
		t.Fatalf("exit events %+v, want 2", exits)
	}
	if e := exits[0]; e.PID != l1.PID || e.Cause != CauseRecycle || e.Took <= 0 || e.App != spec.Name {
		t.Errorf("recycled exit = %+v, want pid %d cause recycle with uptime", e, l1.PID)
	}
	if e := exits[1]; e.PID != l2.PID || e.Cause != CauseCrash || e.ExitCode != 1 {
		t.Errorf("crash exit = %+v, want pid %d cause crash code 1", e, l2.PID)
	}
	if r := evs.find(ProcessRecycled); len(r) != 1 || r[0].Replaced != l1.PID {
		t.Errorf("recycled events %+v, want one replacing %d", r, l1.PID)
	}
	for _, ev := range evs.find(ProcessReady) {
		if ev.Took <= 0 || ev.Port == 0 {
			t.Errorf("ready event without startup time or port: %+v", ev)
		}
	}

	st := f.pool.Status()
	if st.Starts != 2 || st.Crashes != 1 || st.LastExit.PID != l2.PID || st.LastExit.Cause != CauseCrash || st.LastExit.Code != 1 || st.State != "idle" {
		t.Errorf("Status() = %+v", st)
	}
}

// TestEventsStartFailureTripsRapidFail: failed starts are StartFailed events
// with the reason, and the failure that passes rapidFailsPerMinute is
// followed by one RapidFailTripped.
func TestEventsStartFailureTripsRapidFail(t *testing.T) {
	t.Parallel()
	var evs eventLog
	spec := helperSpec(t, "exit", "GH_CODE=3")
	spec.RapidFailsPerMinute = 1
	spec.Events = evs.add
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	for i := range 2 {
		if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrStartupFailed) {
			t.Fatalf("attempt %d: %v, want a start failure", i+1, err)
		}
	}
	if _, err := f.pool.Acquire(ctx); !errors.Is(err, upstream.ErrRapidFails) {
		t.Fatalf("third attempt: %v, want the rapid-fail refusal", err)
	}
	// Events are reported after the pool applied them: Acquire may return first.
	waitFor(5*time.Second, func() bool { return len(evs.find(RapidFailTripped)) > 0 })
	fails := evs.find(StartFailed)
	if len(fails) != 2 {
		t.Fatalf("StartFailed events %+v, want 2", fails)
	}
	for _, ev := range fails {
		if ev.StartReason() != "process exited during startup" || ev.PID == 0 {
			t.Errorf("StartFailed event %+v: reason %q", ev, ev.StartReason())
		}
	}
	for _, ev := range evs.find(ProcessExited) {
		if ev.Cause != CauseStartFailure || ev.ExitCode != 3 {
			t.Errorf("exit event %+v, want cause start_failure code 3", ev)
		}
	}
	trips := evs.find(RapidFailTripped)
	if len(trips) != 1 || !errors.Is(trips[0].Err, upstream.ErrRapidFails) {
		t.Fatalf("RapidFailTripped events %+v, want 1", trips)
	}
	// The trip comes right after the second failure.
	all := fmt.Sprint(evs.kinds(0))
	if !strings.HasSuffix(all, "start_failed rapid_fail_tripped]") {
		t.Errorf("event order %s: want the trip right after the second failure", all)
	}
	st := f.pool.Status()
	if st.State != "backing-off" || st.RetryAfter <= 0 || !strings.Contains(st.LastStartError, "exited during startup") {
		t.Errorf("Status() = %+v, want backing-off with the last start error", st)
	}
}

// TestEventsStopCause: processes stopped by Stop report cause stop.
func TestEventsStopCause(t *testing.T) {
	t.Parallel()
	var evs eventLog
	spec := helperSpec(t, "echo")
	spec.Events = evs.add
	f := newFixture(t, spec)
	ctx := ctxT(t, 20*time.Second)
	l, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := f.pool.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(5*time.Second, func() bool { return len(evs.find(ProcessExited)) > 0 })
	exits := evs.find(ProcessExited)
	if len(exits) != 1 || exits[0].Cause != CauseStop || exits[0].PID != l.PID {
		t.Fatalf("exit events after Stop = %+v, want one with cause stop", exits)
	}
	if st := f.pool.Status(); st.State != "idle" || len(st.Processes) != 0 {
		t.Errorf("Status() after Stop = %+v", st)
	}
}
