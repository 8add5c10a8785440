package supervisor

import (
	"context"
	"testing"
	"time"
)

// TestStatusStates: Status tells an idle pool (nothing started yet, or
// its process gone) from one the operator stopped, and shows a recycle
// under way as "recycling" while the old process still serves.
func TestStatusStates(t *testing.T) {
	t.Parallel()
	spec := helperSpec(t, "echo")
	f := newFixture(t, spec)
	if st := f.pool.Status(); st.State != "idle" {
		t.Errorf("state before the first start = %q, want idle", st.State)
	}
	if err := f.pool.Start(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := f.pool.Status(); st.State != "ready" {
		t.Errorf("state after Start = %q, want ready", st.State)
	}

	// A replacement that never listens holds the recycle open.
	next := helperSpec(t, "never")
	next.StartupTimeout = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.pool.Recycle(ctx, &next) }() // ends with cancel below
	if !waitFor(10*time.Second, func() bool { return f.pool.Status().State == "recycling" }) {
		t.Errorf("state during a recycle = %q, want recycling", f.pool.Status().State)
	}
	cancel()
	<-done

	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := f.pool.Status(); st.State != "idle" {
		t.Errorf("state after Stop = %q, want idle (the next request starts it)", st.State)
	}
	if err := f.pool.Halt(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := f.pool.Status(); st.State != "stopped" {
		t.Errorf("state after Halt = %q, want stopped", st.State)
	}
}
