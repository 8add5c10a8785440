package rewrite

import (
	"testing"
	"time"
)

// TestBudgetChargesOneTimeoutAtMost checks that a match that ran far past
// its timeout (the engine's clock is coarse; a loaded machine deschedules
// it) costs the budget one timeout only, so the ordinary match after it
// still runs; a stream of slow matches still empties the budget.
func TestBudgetChargesOneTimeoutAtMost(t *testing.T) {
	const timeout = time.Second // long: the refill during the test is negligible
	b := newMatchBudget(timeout)
	if !b.take() {
		t.Fatal("a full budget refused a match")
	}
	b.spend(10 * timeout)
	if !b.take() {
		t.Fatal("one slow match emptied the budget: it must be charged one timeout at most")
	}
	for range budgetTimeouts {
		b.spend(10 * timeout)
		b.take()
	}
	if b.take() {
		t.Fatalf("%d slow matches in a row left budget: a stream of them must be refused", budgetTimeouts+1)
	}
}
