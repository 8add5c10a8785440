package supervisor

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// TestHaltUntilResume: the operator's stop (Halt) keeps the pool down,
// starting nothing, until Resume; Stop (app_offline.htm) does not.
func TestHaltUntilResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, helperSpec(t, "echo"))
	acquire := func() error {
		l, err := f.pool.Acquire(ctxT(t, 10*time.Second))
		if err == nil {
			l.Release()
		}
		return err
	}
	if err := acquire(); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.Halt(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pool.Processes()); n != 0 {
		t.Errorf("%d processes after Halt", n)
	}
	if err := acquire(); !errors.Is(err, ErrHalted) || !errors.Is(err, upstream.ErrShuttingDown) {
		t.Errorf("Acquire while halted: %v, want ErrHalted", err)
	}
	if err := f.pool.Start(ctxT(t, 10*time.Second)); !errors.Is(err, ErrHalted) {
		t.Errorf("Start while halted: %v, want ErrHalted", err)
	}
	if st := f.pool.Status(); st.State != "stopped" || st.Starts != 1 {
		t.Errorf("status while halted: %s, %d starts; want stopped, 1", st.State, st.Starts)
	}

	f.pool.Resume()
	if err := acquire(); err != nil {
		t.Fatalf("Acquire after Resume: %v", err)
	}
	if err := f.pool.Stop(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := acquire(); err != nil {
		t.Errorf("Acquire after Stop: %v", err)
	}
	if st := f.pool.Status(); st.State != "ready" || st.Starts != 3 {
		t.Errorf("status: %s, %d starts; want ready, 3", st.State, st.Starts)
	}
}
