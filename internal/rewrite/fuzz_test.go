package rewrite_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// FuzzEvaluate compiles a rule from fuzzed pattern and substitution text and
// evaluates it against a fuzzed request. It must never panic, and whatever
// it returns must be well-formed: a rewritten path starts with "/" and, like
// a Location, holds no byte that cannot appear in a URL. "go test" runs the
// seed corpus only; fuzz with go test -fuzz FuzzEvaluate ./internal/rewrite.
func FuzzEvaluate(f *testing.F) {
	seeds := []struct{ pattern, syntax, url, target, kind string }{
		{"^article/([0-9]+)/([_0-9a-z-]+)", "", "article.aspx?id={R:1}&title={R:2}", "/article/10/hey", "Rewrite"},
		{"(.*)", "", "https://{HTTP_HOST}/{R:1}", "/a%20b?x=1", "Redirect"},
		{"*bar*.aspx", "Wildcard", "{R:1}/{ToLower:{R:2}}", "/FOObarGOO.aspx", "Rewrite"},
		{"Old", "ExactMatch", "{UrlEncode:{R:0}}?q={UrlDecode:{QUERY_STRING}}", "/old?%41%zz", "Redirect"},
		{"^(a+)+$", "", "x", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "Rewrite"},
		{".*", "", "/{C:3}{R:9}/../..//x/./y", "/%2e%2e/%2F", "Rewrite"},
		{"(?<=a)b", "", "{HTTP_X_A}", "/ab", "Redirect"},
	}
	for _, s := range seeds {
		f.Add(s.pattern, s.syntax, s.url, s.target, s.kind)
	}
	f.Fuzz(func(t *testing.T, pattern, syntax, url, target, kind string) {
		spec := &config.Rewrite{Rules: []config.RewriteRule{{
			Name: "fuzz", PatternSyntax: syntax,
			Match: config.RewriteMatch{URL: pattern, IgnoreCase: true},
			Conditions: config.RewriteConditions{TrackAllCaptures: true, List: []config.RewriteCondition{
				{Input: "{QUERY_STRING}", Pattern: "(.*)", IgnoreCase: true},
			}},
			Action: config.RewriteAction{Type: kind, URL: url, AppendQueryString: true, RedirectType: 302},
		}}}
		rs, err := rewrite.Compile(spec, rewrite.Options{AppPath: "/app", Dir: t.TempDir(), MatchTimeout: 50 * time.Millisecond})
		if err != nil {
			return
		}
		p, q, _ := strings.Cut(target, "?")
		if !strings.HasPrefix(p, "/") {
			p = "/app/" + p
		}
		h := http.Header{"X-A": {url}}
		out, err := rs.Evaluate(&rewrite.Input{Method: "GET", Path: p, Query: q, Host: "example.com", Header: h})
		if err != nil {
			return
		}
		switch out.Action {
		case rewrite.Rewrite:
			if !strings.HasPrefix(out.Path, "/") {
				t.Errorf("rewritten path %q does not start with /", out.Path)
			}
			checkURL(t, out.Path+"?"+out.Query)
			if strings.Contains(out.Path, "/../") || strings.HasSuffix(out.Path, "/..") {
				t.Errorf("rewritten path %q keeps a dot segment", out.Path)
			}
		case rewrite.Redirect:
			checkURL(t, out.Location)
		}
	})
}

func checkURL(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			t.Fatalf("%q holds byte %#x", s, c)
		}
	}
}
