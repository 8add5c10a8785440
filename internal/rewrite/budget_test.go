package rewrite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// TestMatchBudget: a stream of requests that make a pattern backtrack
// catastrophically does not get a match timeout's worth of CPU each: once
// the rule set's time budget is spent, its matches are refused at once.
// Another rule set's budget is untouched.
func TestMatchBudget(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Millisecond
	evil := rules(rule("evil", ``, `<match url="^(a+)+$" /><action type="AbortRequest" />`))
	rs := compile(t, evil, rewrite.Options{MatchTimeout: timeout})
	other := compile(t, evil, rewrite.Options{MatchTimeout: timeout})
	hostile := "/" + strings.Repeat("a", 64) + "!"
	timeouts, refused := 0, 0
	for range 50 {
		_, err := rs.Evaluate(request(hostile))
		switch {
		case err == nil:
			t.Fatal("the hostile request matched")
		case strings.Contains(err.Error(), "time budget"):
			refused++
		default:
			timeouts++
		}
	}
	// The budget holds two timeouts and accrues a quarter of the time
	// passed: while every match runs to its timeout, at most a few fit.
	if refused == 0 || timeouts > 10 {
		t.Errorf("of 50 hostile requests, %d ran to the timeout and %d were refused; want most refused", timeouts, refused)
	}
	if _, err := other.Evaluate(request(hostile)); err == nil || strings.Contains(err.Error(), "time budget") {
		t.Errorf("another rule set: %v, want its own timeout (its budget is its own)", err)
	}
}
