package rewrite

import "testing"

// Cases ported from ASP.NET Core's IIS rewrite InputParserTests: the
// templates of condition inputs and substitution URLs.
func TestTemplate(t *testing.T) {
	t.Parallel()
	maps := map[string]*rewriteMap{"apimap": {name: "apiMap", entries: map[string]string{"api.test.com": "test.com/api"}, ignoreCase: true}}
	caps := []string{"foo/bar/baz", "foo", "bar", "baz"}
	e := &evaluation{rs: &RuleSet{appPath: "/"}, in: &Input{}, r: caps, c: caps}
	for _, tt := range []struct{ in, want string }{
		{"hello/hey/what", "hello/hey/what"},
		{"hey/{R:1}/what", "hey/foo/what"},
		{"hey/{R:2}/what", "hey/bar/what"},
		{"hey/{R:3}/what", "hey/baz/what"},
		{"hey/{C:1}/what", "hey/foo/what"},
		{"hey/{C:2}/what", "hey/bar/what"},
		{"hey/{C:3}/what", "hey/baz/what"},
		{"hey/{R:1}/{C:1}", "hey/foo/foo"},
		{"foo/{R:1}{C:2}", "foo/foobar"},
		{"hey/{ToLower:HEY}", "hey/hey"},
		{"hey/{ToLower:{R:1}}", "hey/foo"},
		{"hey/{ToLower:{C:1}/what}", "hey/foo/what"},
		{"hey/{tolower:A}", "hey/a"},
		{"hey/ToLower:/what", "hey/ToLower:/what"},
		{"hey/{UrlEncode:<hey>}", "hey/%3Chey%3E"},
		{"{UrlDecode:a%2Fb+c%zz}", "a/b c%zz"},
		{"{apiMap:api.test.com}", "test.com/api"},
		{"{APIMAP:API.TEST.COM}", "test.com/api"},
		{"{apiMap:other}", ""},
		{"a}b", "a}b"},
	} {
		tmpl, err := parseTemplate(tt.in, maps)
		if err != nil {
			t.Errorf("parse %q: %v", tt.in, err)
			continue
		}
		if got := string(tmpl.expand(nil, e)); got != tt.want {
			t.Errorf("%q = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"{", "{:}", "{R:", "{R:1", "{R:A}", "{R:10}", "{R:-1}", "{R:+1}", "{foo:1", "{UrlEncode:{R:}}",
		"{UrlEncode:{R:1}", "{HTTPS", "{apiMap2:{R:1}}", "{NO_SUCH_VARIABLE}", "{a{b}"} {
		if _, err := parseTemplate(bad, maps); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}
