package rewrite_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// TestMatchBudget: through Evaluate, a hostile request that makes a
// pattern backtrack catastrophically is an error, never a match; it is a
// match timeout while the rule set's time budget lasts and a refusal once
// it is spent; another rule set's budget is its own. The budget's clock is
// the test's, so nothing here depends on how fast the machine is; the
// budget's arithmetic is TestBudget* in budget_internal_test.go.
func TestMatchBudget(t *testing.T) {
	t.Parallel()
	const timeout = 20 * time.Millisecond
	evil := rules(rule("evil", ``, `<match url="^(a+)+$" /><action type="AbortRequest" />`))
	rs := compile(t, evil, rewrite.Options{MatchTimeout: timeout})
	other := compile(t, evil, rewrite.Options{MatchTimeout: timeout})
	hostile := "/" + strings.Repeat("a", 64) + "!"
	// Each reading of rs's clock is a timeout after the one before: each
	// match is seen to run a full timeout, and the budget drains.
	clock := &fakeClock{t: time.Unix(1e9, 0), step: timeout}
	rewrite.SetBudgetClock(rs, clock.now)

	evaluate := func(rs *rewrite.RuleSet, what string) error {
		t.Helper()
		out, err := rs.Evaluate(request(hostile))
		if err == nil || !strings.Contains(err.Error(), `"evil"`) {
			t.Fatalf("%s: Evaluate = %+v, %v; want an error naming the rule", what, out, err)
		}
		if out.Action != rewrite.None {
			t.Fatalf("%s: action %v on error, want None", what, out.Action)
		}
		return err
	}
	isTimeout := func(err error) bool {
		return !errors.Is(err, rewrite.ErrBudget) && strings.Contains(err.Error(), "match timeout")
	}

	// A full budget holds a timeout: the first hostile request runs to it.
	if err := evaluate(rs, "first request"); !isTimeout(err) {
		t.Fatalf("first request: %v, want a match timeout", err)
	}
	// A stream of them is refused within a few requests: the budget holds
	// two timeouts and accrues a quarter of the time passed.
	const stream = 10
	timeouts := 1
	for {
		err := evaluate(rs, "stream")
		if errors.Is(err, rewrite.ErrBudget) {
			break
		}
		if !isTimeout(err) {
			t.Fatalf("stream: %v, want a match timeout or %v", err, rewrite.ErrBudget)
		}
		if timeouts++; timeouts == stream {
			t.Fatalf("%d hostile requests in a row ran to their timeout; want refusals once the budget is spent", stream)
		}
	}
	// With no time passing, every request after is refused.
	clock.freeze()
	for i := range 3 {
		if err := evaluate(rs, "spent budget"); !errors.Is(err, rewrite.ErrBudget) {
			t.Fatalf("request %d on a spent budget: %v, want %v", i, err, rewrite.ErrBudget)
		}
	}
	// Another rule set, same rules: its budget is full, its match runs.
	if err := evaluate(other, "another rule set"); !isTimeout(err) {
		t.Errorf("another rule set: %v, want its own match timeout (its budget is its own)", err)
	}
}

// fakeClock is a clock that moves by step at each reading (0: frozen).
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *fakeClock) freeze() {
	c.mu.Lock()
	c.step = 0
	c.mu.Unlock()
}
