package rewrite

import (
	"testing"
	"time"
)

// budgetTimeout is the match timeout of the budgets tested here.
const budgetTimeout = 20 * time.Millisecond

// testClock is a clock that moves only when the test moves it.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// budgetOn returns a full budget for budgetTimeout on c.
func budgetOn(c *testClock) *matchBudget {
	b := newMatchBudget(budgetTimeout)
	b.now, b.filled = c.now, c.now()
	return b
}

// run makes one match that takes d on c's clock, as matcher.match does;
// it reports whether the budget let it run.
func run(b *matchBudget, c *testClock, d time.Duration) bool {
	start, ok := b.take()
	if !ok {
		return false
	}
	c.advance(d)
	b.spend(start)
	return true
}

// TestBudgetRefusesOnceSpent: back-to-back matches that each run their
// full timeout T spend the budget (2 T when full) faster than it accrues
// (T/4 during each): the first costs T, each next T − T/4, so with 2 T,
// T, T/4 left before them three run, and the fourth, at −T/4, is refused,
// as is every one after while no time passes.
func TestBudgetRefusesOnceSpent(t *testing.T) {
	c := &testClock{t: time.Unix(1e9, 0)}
	b := budgetOn(c)
	if b.left != budgetTimeouts*budgetTimeout {
		t.Fatalf("a new budget holds %v, want %d timeouts (%v)", b.left, budgetTimeouts, budgetTimeouts*budgetTimeout)
	}
	for i := range 3 {
		if !run(b, c, budgetTimeout) {
			t.Fatalf("match %d refused with %v left before it", i, b.left)
		}
	}
	for i := range 3 {
		if run(b, c, budgetTimeout) {
			t.Fatalf("match %d after three full timeouts ran; want it refused (%v left)", 3+i, b.left)
		}
	}
	if want := -budgetTimeout / budgetShare; b.left != want {
		t.Errorf("left %v after the refusals, want %v", b.left, want)
	}
}

// TestBudgetAccrues: an empty budget refills at 1/budgetShare of the time
// passed, up to what it holds when full, and a match is allowed as soon
// as anything is left.
func TestBudgetAccrues(t *testing.T) {
	c := &testClock{t: time.Unix(1e9, 0)}
	b := budgetOn(c)
	b.left = -budgetTimeout
	c.advance(budgetShare * budgetTimeout) // accrues one timeout: back to 0
	if _, ok := b.take(); ok || b.left != 0 {
		t.Fatalf("after %v from −%v: allowed %v with %v left; want refused with 0 left", budgetShare*budgetTimeout, budgetTimeout, ok, b.left)
	}
	c.advance(budgetShare * time.Nanosecond) // accrues 1 ns
	if _, ok := b.take(); !ok || b.left != time.Nanosecond {
		t.Fatalf("1 ns accrued: allowed %v with %v left; want allowed with 1ns", ok, b.left)
	}
	c.advance(time.Hour)
	if b.take(); b.left != b.burst {
		t.Fatalf("after an hour %v left, want the full %v", b.left, b.burst)
	}
}

// TestBudgetChargesOneTimeoutAtMost: a match that ran far past its
// timeout (the engine's clock is coarse; a loaded machine deschedules it)
// costs the budget one timeout only, so the match after it still runs.
func TestBudgetChargesOneTimeoutAtMost(t *testing.T) {
	c := &testClock{t: time.Unix(1e9, 0)}
	b := budgetOn(c)
	start, _ := b.take()
	c.advance(100 * budgetTimeout)
	b.spend(start)
	if want := b.burst - budgetTimeout; b.left != want {
		t.Fatalf("a match of 100 timeouts left %v, want %v: it must be charged one timeout", b.left, want)
	}
	// Uncapped, it would leave 2 T − 100 T + 25 T accrued = −73 T: refusals
	// until 292 T more had passed.
	if !run(b, c, 0) {
		t.Fatal("one slow match emptied the budget: it must be charged one timeout at most")
	}
}

// TestBudgetNil: a nil budget (no match timeout) allows every match.
func TestBudgetNil(t *testing.T) {
	var b *matchBudget
	if newMatchBudget(0) != nil {
		t.Fatal("a budget for matches without a timeout")
	}
	for range 1000 {
		start, ok := b.take()
		if !ok {
			t.Fatal("a nil budget refused a match")
		}
		b.spend(start)
	}
}
