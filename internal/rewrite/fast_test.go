package rewrite

import (
	"slices"
	"testing"
	"time"
)

// TestFastPatternAgrees checks the engine-free answers against the engine,
// over the patterns published rules use and inputs that stress anchors,
// case and position.
func TestFastPatternAgrees(t *testing.T) {
	t.Parallel()
	patterns := []string{".*", "(.*)", "^(.*)$", "^.*$", "off", "^OFF$", `^example\.com$`, "^api/", `\.php$`, "on", `^www\.`, "x=1&y", `a\-b`}
	inputs := []string{"", "off", "OFF", "Off", "xoffx", "example.com", "Example.COM", "example.comx", "examplexcom", "api/x", "API/x", "/api/x", "a.php", "a.PHP", "a.phpx", "www.a.b", "wwwxa", "x=1&y=2", "a-b", "ab"}
	for _, p := range patterns {
		f := parseFast(p)
		if f == nil {
			t.Errorf("%q has no fast form", p)
			continue
		}
		for _, fold := range []bool{true, false} {
			m, err := compilePattern(p, "ECMAScript", fold, false, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			m.fast = nil
			for _, in := range inputs {
				want, wantOK, err := m.match(in)
				if err != nil {
					t.Fatal(err)
				}
				got, ok := f.match(in, fold)
				if ok != wantOK || !slices.Equal(got, want) {
					t.Errorf("%q ignoreCase=%v on %q: fast %q %v, engine %q %v", p, fold, in, got, ok, want, wantOK)
				}
			}
		}
	}
	for _, p := range []string{"a.c", "(a)", "a|b", "a*", "[a]", `\d`, "", "^", "a?", "(?i)a", `a\`} {
		if parseFast(p) != nil {
			t.Errorf("%q must go to the engine", p)
		}
	}
}

// FuzzFastPattern compares the fast path with the engine on any pattern it
// accepts and any plain ASCII input.
func FuzzFastPattern(f *testing.F) {
	for _, s := range [][2]string{{"^OFF$", "off"}, {`^www\.`, "www.x"}, {".*", "abc"}, {`\.php$`, "x.PHP"}} {
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, pattern, in string, fold bool) {
		fp := parseFast(pattern)
		if fp == nil || !plainASCII(in) {
			return
		}
		m, err := compilePattern(pattern, "ECMAScript", fold, false, time.Second)
		if err != nil {
			t.Fatalf("fast form of a pattern the engine rejects: %q: %v", pattern, err)
		}
		m.fast = nil
		want, wantOK, err := m.match(in)
		if err != nil {
			return
		}
		got, ok := fp.match(in, fold)
		if ok != wantOK || !slices.Equal(got, want) {
			t.Errorf("%q ignoreCase=%v on %q: fast %q %v, engine %q %v", pattern, fold, in, got, ok, want, wantOK)
		}
	})
}
