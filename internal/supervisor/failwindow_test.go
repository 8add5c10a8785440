package supervisor

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestFailWindow drives the rapid-fail window on synctest's fake clock: a
// fixed window opened by the first failure, refusal once the count passes
// the limit, RetryAfter counting down, a fresh window after a minute.
func TestFailWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var w failWindow
		const limit = 2
		for i := range limit {
			if r := w.record(time.Now(), limit, "crash"); r != nil {
				t.Fatalf("failure %d tripped the limit of %d", i+1, limit)
			}
			if r, _ := w.admit(time.Now(), limit); r != nil {
				t.Fatalf("refused after %d failures with limit %d", i+1, limit)
			}
			time.Sleep(10 * time.Second)
		}
		// 20 s into the window: the third failure trips it.
		tripped := w.record(time.Now(), limit, "pid 7 exited with code 3")
		if tripped == nil || tripped.Limit != limit || tripped.RetryAfter != 40*time.Second || tripped.LastExit != "pid 7 exited with code 3" {
			t.Fatalf("third failure: got %+v, want a trip with 40s left", tripped)
		}
		if w.record(time.Now(), limit, "again") != nil {
			t.Errorf("a fourth failure tripped again in the same window")
		}
		r, first := w.admit(time.Now(), limit)
		if r == nil || !first {
			t.Fatalf("admit after the trip = %v, first %v; want the first refusal", r, first)
		}
		time.Sleep(30 * time.Second)
		r, first = w.admit(time.Now(), limit)
		if r == nil || first || r.RetryAfter != 10*time.Second {
			t.Fatalf("admit at 50s = %+v, first %v; want a repeated refusal with 10s left", r, first)
		}
		time.Sleep(10 * time.Second) // the window is a minute old: a new one opens
		if r, _ := w.admit(time.Now(), limit); r != nil {
			t.Fatalf("still refused after the window ended: %v", r)
		}
		if w.record(time.Now(), limit, "x") != nil {
			t.Errorf("the first failure of a new window tripped the limit")
		}
	})
}

// TestFailWindowLimitZero: with rapidFailsPerMinute 0 the first failure
// blocks starts for the rest of the minute that began at the first check.
func TestFailWindowLimitZero(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var w failWindow
		if r, _ := w.admit(time.Now(), 0); r != nil {
			t.Fatalf("refused before any failure: %v", r)
		}
		time.Sleep(5 * time.Second)
		if w.record(time.Now(), 0, "crash") == nil {
			t.Fatal("the first failure did not trip a limit of 0")
		}
		if r, _ := w.admit(time.Now(), 0); r == nil || r.RetryAfter != 55*time.Second {
			t.Fatalf("admit = %+v, want a refusal with 55s left (the window opened at the first check)", r)
		}
	})
}
