package rewrite

import (
	"fmt"
	"strings"
	"time"

	"github.com/dlclark/regexp2"
)

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
	res, err := m.re.FindStringMatch(s)
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
