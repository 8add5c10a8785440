package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dlclark/regexp2"
)

// matchClockPeriod is how often regexp2 reads the clock its match
// timeouts are checked against. At its default, 100 ms, a match ran up to
// 100–200 ms past its timeout: a 100 ms timeout cost up to 300 ms of CPU
// per hostile request. The clock goroutine runs only while matches with a
// timeout are made (and a second after).
const matchClockPeriod = 10 * time.Millisecond

func init() { regexp2.SetTimeoutCheckPeriod(matchClockPeriod) }

// matcher tests one input against a rule's or condition's pattern.
type matcher struct {
	re     *regexp2.Regexp // ECMAScript and Wildcard
	exact  string          // ExactMatch
	fold   bool            // ExactMatch and fast: ignore case
	negate bool
	// fast, when set, answers the common regular expressions without the
	// engine for ASCII input without line breaks (see fastPattern).
	fast *fastPattern
	// noCaps: nothing refers to the captures, so match returns none.
	noCaps bool
	// budget bounds the time re may take, shared by the matchers of one
	// rule set; nil: unbounded.
	budget *matchBudget
}

// compilePattern compiles pattern in syntax ("ECMAScript", "Wildcard",
// "ExactMatch"; "" is ECMAScript).
func compilePattern(pattern, syntax string, ignoreCase, negate bool, timeout time.Duration) (*matcher, error) {
	m := &matcher{negate: negate}
	var expr string
	var opts regexp2.RegexOptions = regexp2.ECMAScript
	switch syntax {
	case "", "ECMAScript":
		expr = pattern
	case "Wildcard":
		expr = wildcardRegexp(pattern)
		opts = regexp2.Singleline
	case "ExactMatch":
		m.exact, m.fold = pattern, ignoreCase
		return m, nil
	default:
		return nil, fmt.Errorf("patternSyntax %q is not ECMAScript, Wildcard or ExactMatch", syntax)
	}
	if ignoreCase {
		opts |= regexp2.IgnoreCase
	}
	re, err := regexp2.Compile(expr, opts)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid regular expression: %w", pattern, err)
	}
	if timeout > 0 {
		re.MatchTimeout = timeout
	}
	m.re = re
	if syntax != "Wildcard" {
		m.fast, m.fold = parseFast(pattern), ignoreCase
	}
	return m, nil
}

// wildcardRegexp turns an IIS wildcard pattern into an anchored regular
// expression: each "*" captures any run of characters, "?" matches one
// character without capturing, everything else is literal.
func wildcardRegexp(p string) string {
	var b strings.Builder
	b.WriteString(`\A`)
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(`(.*)`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp2.Escape(string(r)))
		}
	}
	b.WriteString(`\z`)
	return b.String()
}

// match tests s. ok is the result after negate; caps are the captures
// ({R:0} is the whole match) when the pattern matched, negate is off and
// noCaps is not set, else nil. err is a match timeout.
func (m *matcher) match(s string) (caps []string, ok bool, err error) {
	if m.re == nil {
		hit := s == m.exact || m.fold && strings.EqualFold(s, m.exact)
		if hit && !m.negate {
			return []string{s}, true, nil
		}
		return nil, hit != m.negate, nil
	}
	if m.fast != nil && plainASCII(s) {
		if m.noCaps || m.negate {
			_, _, hit := m.fast.find(s, m.fold)
			return nil, hit != m.negate, nil
		}
		caps, hit := m.fast.match(s, m.fold)
		return caps, hit, nil
	}
	start, ok := m.budget.take()
	if !ok {
		return nil, false, errBudget
	}
	res, err := m.re.FindStringMatch(s)
	m.budget.spend(start)
	if err != nil {
		return nil, false, err
	}
	if res == nil {
		return nil, m.negate, nil
	}
	if m.negate || m.noCaps {
		return nil, !m.negate, nil
	}
	groups := res.Groups()
	caps = make([]string, len(groups))
	for i := range groups {
		if len(groups[i].Captures) > 0 {
			caps[i] = groups[i].String()
		}
	}
	return caps, true, nil
}

// errBudget refuses a match while the rule set's budget is used up.
var errBudget = errors.New("the rule set's regular expressions used up their time budget (a pattern that backtracks catastrophically on this input?)")

// Time budget of the regular-expression engine, per rule set. The engine
// backtracks (ECMAScript semantics, as IIS): a pattern such as (a+)+$
// takes exponential time on some inputs, and each such match runs until
// the match timeout. The budget turns a stream of them from a CPU drain
// on the whole server into refusals (500.52) for the app whose rules they
// are, while matches of ordinary rules (microseconds) never notice it.
const (
	// budgetShare is the part of one CPU a rule set's matches may use
	// over time: budget accrues at 1/budgetShare second per second.
	budgetShare = 4
	// budgetTimeouts is how many match timeouts the budget holds when
	// full: a single slow match is always allowed its full timeout.
	budgetTimeouts = 2
)

// matchBudget is a token bucket of engine time. It is safe for concurrent
// use; a nil *matchBudget allows everything.
type matchBudget struct {
	// now is the clock the budget accrues and matches are timed by:
	// time.Now, or a test's.
	now   func() time.Time
	burst time.Duration // the most it holds

	mu     sync.Mutex    // protects left and filled
	left   time.Duration // what it holds now; may go negative
	filled time.Time     // when left was last topped up
}

// newMatchBudget returns the budget for matches bounded by timeout; nil
// (no budget) when matches are not bounded.
func newMatchBudget(timeout time.Duration) *matchBudget {
	if timeout <= 0 {
		return nil
	}
	b := budgetTimeouts * timeout
	return &matchBudget{now: time.Now, burst: b, left: b, filled: time.Now()}
}

// take tops the budget up for the time passed and reports whether some
// is left; start is the time it read, the start of the match to pass to
// spend. A nil budget always has some left (start is then zero).
func (b *matchBudget) take() (start time.Time, ok bool) {
	if b == nil {
		return time.Time{}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.left = min(b.burst, b.left+now.Sub(b.filled)/budgetShare)
	b.filled = now
	return now, b.left > 0
}

// spend charges the budget for a match that started at start (from take)
// and ends now. A match is charged at most one timeout: what the engine's
// clock lets it run past that, or what a loaded machine adds by not
// scheduling it, is not the pattern's doing, and must not let one slow
// match lock out the ordinary ones that follow (the budget holds
// budgetTimeouts of them).
func (b *matchBudget) spend(start time.Time) {
	if b == nil {
		return
	}
	d := min(b.now().Sub(start), b.burst/budgetTimeouts)
	b.mu.Lock()
	b.left -= d
	b.mu.Unlock()
}
