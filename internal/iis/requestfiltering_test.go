package iis

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// filtering is the <requestFiltering> of testdata-like IIS configs, with
// IIS's defaults for what it does not set.
func filtering() *config.RequestFiltering {
	return &config.RequestFiltering{
		AllowHighBitCharacters:   false,
		UnescapeQueryString:      true,
		Limits:                   config.RequestLimits{HeaderLimits: []config.HeaderLimit{{Header: "X-Note", SizeLimit: 8}}},
		FileExtensions:           config.FileExtensions{AllowUnlisted: true, Rules: []config.ExtensionRule{{Extension: ".config", Allowed: false}, {Extension: ".bak", Allowed: false}}},
		Verbs:                    config.Verbs{AllowUnlisted: true, Rules: []config.VerbRule{{Verb: "TRACE", Allowed: false}}},
		HiddenSegments:           []string{"App_Data", "bin"},
		DenyURLSequences:         []string{"..", "~/"},
		DenyQueryStringSequences: []string{"<script"},
	}
}

func TestRequestFiltering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     func(*config.RequestFiltering)
		method  string
		path    string
		query   string
		header  http.Header
		appPath string
		want    string // "" passes, else "404.N"
	}{
		{name: "plain", path: "/products/42", want: ""},
		{name: "escaped space", path: "/a%20b", want: ""},
		{name: "double escaped", path: "/a%2541", want: "404.11"},
		{name: "plus in path", path: "/a+b", want: "404.11"},
		{name: "double escaping allowed", cfg: func(c *config.RequestFiltering) { c.AllowDoubleEscaping = true }, path: "/a%2541+b", want: ""},
		{name: "high bit escaped", path: "/caf%C3%A9", want: "404.12"},
		{name: "high bit in query", path: "/", query: "q=%C3%A9", want: "404.12"},
		{name: "raw high bit in query", path: "/", query: "q=\xc3\xa9", want: "404.12"},
		{name: "raw high bit in query with an escape", path: "/", query: "a=%41&q=\xc3\xa9", want: "404.12"},
		{name: "raw high bit in query with a bad escape", path: "/", query: "a=%zz&q=\xc3\xa9", want: "404.12"},
		{name: "high bit allowed", cfg: func(c *config.RequestFiltering) { c.AllowHighBitCharacters = true }, path: "/caf%C3%A9", want: ""},
		{name: "header limit", path: "/", header: http.Header{"X-Note": {"123456789"}}, want: "404.10"},
		{name: "header within limit", path: "/", header: http.Header{"X-Note": {"12345678"}}, want: ""},
		{name: "verb denied", method: "TRACE", path: "/", want: "404.6"},
		{name: "verb case-sensitive", method: "trace", path: "/", want: ""},
		{name: "unlisted verb denied", cfg: func(c *config.RequestFiltering) {
			c.Verbs = config.Verbs{Rules: []config.VerbRule{{Verb: "GET", Allowed: true}}}
		}, method: "POST", path: "/", want: "404.6"},
		{name: "listed verb allowed", cfg: func(c *config.RequestFiltering) {
			c.Verbs = config.Verbs{Rules: []config.VerbRule{{Verb: "GET", Allowed: true}}}
		}, method: "GET", path: "/", want: ""},
		{name: "extension denied", path: "/web.CONFIG", want: "404.7"},
		{name: "extension only in last segment", path: "/a.config/b", want: ""},
		{name: "unlisted extension denied", cfg: func(c *config.RequestFiltering) {
			c.FileExtensions = config.FileExtensions{Rules: []config.ExtensionRule{{Extension: ".html", Allowed: true}}}
		}, path: "/x.php", want: "404.7"},
		{name: "extensionless is '.'", cfg: func(c *config.RequestFiltering) {
			c.FileExtensions = config.FileExtensions{Rules: []config.ExtensionRule{{Extension: ".", Allowed: true}}}
		}, path: "/api/orders", want: ""},
		{name: "extensionless unlisted", cfg: func(c *config.RequestFiltering) {
			c.FileExtensions = config.FileExtensions{Rules: []config.ExtensionRule{{Extension: ".html", Allowed: true}}}
		}, path: "/api/orders", want: "404.7"},
		{name: "extensionless denied", cfg: func(c *config.RequestFiltering) {
			c.FileExtensions = config.FileExtensions{AllowUnlisted: true, Rules: []config.ExtensionRule{{Extension: ".", Allowed: false}, {Extension: ".", Allowed: true}}}
		}, path: "/", want: "404.7"},
		{name: "hidden segment", path: "/app_data/db.mdf", want: "404.8"},
		{name: "empty hidden segment", cfg: func(c *config.RequestFiltering) { c.HiddenSegments = []string{""} }, path: "/", want: "404.8"},
		{name: "empty segments are not hidden", path: "//x//", want: ""},
		{name: "hidden segment inside", path: "/x/BIN/y", want: "404.8"},
		{name: "segment prefix is not hidden", path: "/binary", want: ""},
		{name: "hidden below the app path", appPath: "/bin", path: "/bin/x", want: ""},
		{name: "hidden segment escaped", path: "/%62in/x", want: "404.8"},
		{name: "url sequence", path: "/a/~/b", want: "404.5"},
		{name: "url sequence escaped", path: "/a/%7E/b", want: "404.5"},
		{name: "query sequence", path: "/", query: "q=%3CSCRIPT%3E", want: "404.18"},
		{name: "query sequence raw", path: "/", query: "q=<script>", want: "404.18"},
		{name: "query sequence escaped, unescape off", cfg: func(c *config.RequestFiltering) { c.UnescapeQueryString = false }, path: "/", query: "q=%3Cscript%3E", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := filtering()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			s := NewRequestFiltering(cfg)
			if s == nil {
				t.Fatal("no stage")
			}
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := &pipeline.Request{Method: method, Path: tt.path, RawQuery: tt.query, Header: pipeline.HTTPHeader(h), AppPath: tt.appPath}
			res := s.Serve(r)
			got := ""
			if res != nil {
				got = res.Code()
				if res.Stage != "requestFiltering" || res.Reason == "" {
					t.Errorf("result %+v lacks stage or reason", res)
				}
			}
			if got != tt.want {
				t.Errorf("%s %s?%s = %q, want %q", method, tt.path, tt.query, got, tt.want)
			}
		})
	}
}

func TestRequestFilteringNothingToDo(t *testing.T) {
	t.Parallel()
	if NewRequestFiltering(nil) != nil {
		t.Error("nil section built a stage")
	}
	only := &config.RequestFiltering{AllowDoubleEscaping: true, AllowHighBitCharacters: true,
		FileExtensions: config.FileExtensions{AllowUnlisted: true, Rules: []config.ExtensionRule{{Extension: ".json", Allowed: true}}},
		Verbs:          config.Verbs{AllowUnlisted: true}, Limits: config.RequestLimits{MaxURL: 10}}
	if NewRequestFiltering(only) != nil {
		t.Error("a section that refuses nothing built a stage")
	}
	if l := Limits(only); l == nil || l.MaxURL != 10 {
		t.Errorf("Limits = %+v", l)
	}
	if Limits(&config.RequestFiltering{}) != nil {
		t.Error("Limits without limits is not nil")
	}
}
