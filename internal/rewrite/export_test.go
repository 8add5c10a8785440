package rewrite

import "time"

// ErrBudget is the error of a match refused because its rule set's time
// budget is used up.
var ErrBudget = errBudget

// SetBudgetClock puts the match budget of rs on the clock now, full, as if
// rs had been compiled at now(). It does nothing for a rule set without a
// budget (no match timeout).
func SetBudgetClock(rs *RuleSet, now func() time.Time) {
	for _, r := range rs.rules {
		if b := r.match.budget; b != nil { // one budget, shared by all of rs's matchers
			b.mu.Lock()
			b.now, b.left, b.filled = now, b.burst, now()
			b.mu.Unlock()
			return
		}
	}
}
