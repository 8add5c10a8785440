package rewrite_test

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/rewrite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// regexp2's match-timeout clock goroutine ends on its own shortly after
	// the last match with a timeout.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
}

// compile parses rules (the inside of <rewrite>) from a web.config the way
// an app's file is read, and compiles them for opts.
func compile(t testing.TB, rules string, opts rewrite.Options) *rewrite.RuleSet {
	t.Helper()
	dir := t.TempDir()
	doc := `<configuration><system.webServer><aspNetCore processPath="app" />` +
		"<rewrite>" + rules + "</rewrite></system.webServer></configuration>"
	app, err := webconfig.Decode(strings.NewReader(doc), "web.config", dir)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	rs, err := rewrite.Compile(app.Rewrite, opts)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return rs
}

// request builds an Input for target ("/path?query") on http://example.com.
func request(target string) *rewrite.Input {
	p, q, _ := strings.Cut(target, "?")
	return &rewrite.Input{
		Method: "GET", Path: p, Query: q, Host: "example.com", RemoteAddr: "192.0.2.7", RemotePort: "50000",
		LocalAddr: "192.0.2.1", ServerPort: "80", Protocol: "HTTP/1.1", Header: http.Header{},
	}
}

func rule(name, attrs, body string) string {
	return `<rule name="` + name + `" ` + attrs + `>` + body + `</rule>`
}

func rules(rs ...string) string { return "<rules>" + strings.Join(rs, "") + "</rules>" }

// Cases ported from ASP.NET Core's IIS URL Rewrite middleware tests
// (src/Middleware/Rewrite/test/IISUrlRewrite/MiddleWareTests.cs) and the IIS
// URL Rewrite configuration reference. Where IIS and the middleware differ,
// IIS wins, and the case says so.
func TestEvaluate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rules  string
		opts   rewrite.Options
		target string
		edit   func(in *rewrite.Input)
		want   rewrite.Outcome
	}{
		{
			name:   "redirect path to path and query",
			rules:  rules(rule("r", "", `<match url="^article/([0-9]+)/([_0-9a-z-]+)" /><action type="Redirect" url="article.aspx?id={R:1}&amp;title={R:2}" />`)),
			target: "/article/10/hey",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "r", Status: 301, Location: "/article.aspx?id=10&title=hey"},
		},
		{
			name:   "rewrite path to path and query",
			rules:  rules(rule("r", "", `<match url="^article/([0-9]+)/([_0-9a-z-]+)" /><action type="Rewrite" url="article.aspx?id={R:1}&amp;title={R:2}" />`)),
			target: "/article/10/hey",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "r", Path: "/article.aspx", Query: "id=10&title=hey"},
		},
		{
			name: "rewrite based on query string parameters, {C:n} of the previous condition in an input",
			rules: rules(rule("Query String Rewrite", "", `<match url="page\.asp$" />
				<conditions><add input="{QUERY_STRING}" pattern="p1=(\d+)" />
				<add input="##{C:1}##_{QUERY_STRING}" pattern="##([^#]+)##_.*p2=(\d+)" /></conditions>
				<action type="Rewrite" url="newpage.aspx?param1={C:1}&amp;param2={C:2}" appendQueryString="false" />`)),
			target: "/page.asp?p2=321&p1=123",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "Query String Rewrite", Path: "/newpage.aspx", Query: "param1=123&param2=321"},
		},
		{
			name:   "redirect to lower case (ignoreCase false)",
			rules:  rules(rule("lower", `stopProcessing="true"`, `<match url=".*[A-Z].*" ignoreCase="false" /><action type="Redirect" url="{ToLower:{R:0}}" redirectType="Permanent" />`)),
			target: "/HElLo",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "lower", Status: 301, Location: "/hello"},
		},
		{
			name:   "ignoreCase false does not match other case",
			rules:  rules(rule("lower", ``, `<match url="^hello$" ignoreCase="false" /><action type="Redirect" url="x" />`)),
			target: "/HELLO",
			want:   rewrite.Outcome{},
		},
		{
			name:   "ignoreCase is the default",
			rules:  rules(rule("any", ``, `<match url="^hello$" /><action type="Redirect" url="x" redirectType="Found" />`)),
			target: "/HELLO",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "any", Status: 302, Location: "/x"},
		},
		{
			name: "remove trailing slash unless file or directory",
			rules: rules(rule("trim", `stopProcessing="true"`, `<match url="(.*)/$" /><conditions>
				<add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" />
				<add input="{REQUEST_FILENAME}" matchType="IsDirectory" negate="true" /></conditions>
				<action type="Redirect" redirectType="Permanent" url="{R:1}" />`)),
			target: "/hey/hello/",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "trim", Status: 301, Location: "/hey/hello"},
		},
		{
			name: "add trailing slash",
			rules: rules(rule("add", `stopProcessing="true"`, `<match url="(.*[^/])$" /><conditions>
				<add input="{REQUEST_FILENAME}" matchType="isfile" negate="true" />
				<add input="{REQUEST_FILENAME}" matchType="isdirectory" negate="true" /></conditions>
				<action type="Redirect" redirectType="Permanent" url="{R:1}/" />`)),
			target: "/hey/hello",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "add", Status: 301, Location: "/hey/hello/"},
		},
		{
			name: "redirect to https",
			rules: rules(rule("https", `stopProcessing="true"`, `<match url="(.*)" /><conditions><add input="{HTTPS}" pattern="^OFF$" /></conditions>
				<action type="Redirect" url="https://{HTTP_HOST}/{R:1}" redirectType="Permanent" />`)),
			target: "/",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "https", Status: 301, Location: "https://example.com/"},
		},
		{
			name: "no https redirect over https",
			rules: rules(rule("https", `stopProcessing="true"`, `<match url="(.*)" /><conditions><add input="{HTTPS}" pattern="^OFF$" /></conditions>
				<action type="Redirect" url="https://{HTTP_HOST}/{R:1}" redirectType="Permanent" />`)),
			target: "/a",
			edit:   func(in *rewrite.Input) { in.HTTPS = true },
			want:   rewrite.Outcome{},
		},
		{
			name:   "rewrite to an absolute URL on the same host keeps to this server",
			rules:  rules(rule("self", ``, `<match url="(.*)" /><action type="Rewrite" url="http://{HTTP_HOST}/x/{R:1}" />`)),
			target: "/a?q=1",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "self", Path: "/x/a", Query: "q=1"},
		},
		{
			name:   "captured empty string redirects to /",
			rules:  rules(rule("t", ``, `<match url="(.*)" /><action type="Redirect" url="{R:1}" />`)),
			target: "/",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "t", Status: 301, Location: "/"},
		},
		{
			name:   "captured empty string rewrites to /",
			rules:  rules(rule("t", ``, `<match url="(.*)" /><action type="Rewrite" url="{R:1}" />`)),
			target: "/",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "t", Path: "/"},
		},
		{
			// ASP.NET answers "/foo"; IIS resolves against the app folder, "/foo/".
			name:   "captured empty string in a virtual app redirects to the app",
			rules:  rules(rule("t", ``, `<match url="(.*)" /><action type="Redirect" url="{R:1}" />`)),
			opts:   rewrite.Options{AppPath: "/foo"},
			target: "/foo",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "t", Status: 301, Location: "/foo/"},
		},
		{
			// IIS's REQUEST_URI carries the query string (ASP.NET's does not),
			// so the first pattern has no "$".
			name: "trackAllCaptures numbers the captures of every condition",
			rules: rules(rule("t", ``, `<match url="(.*)" ignoreCase="false" /><conditions trackAllCaptures="true">
				<add input="{REQUEST_URI}" pattern="^/([a-zA-Z]+)/([0-9]+)" />
				<add input="{QUERY_STRING}" pattern="p2=([a-z]+)" /></conditions>
				<action type="Redirect" url="blogposts/{C:1}/{C:4}" appendQueryString="false" />`)),
			target: "/article/23?p1=123&p2=abc",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "t", Status: 301, Location: "/blogposts/article/abc"},
		},
		{
			name: "trackAllCaptures with rule captures",
			rules: rules(rule("t", ``, `<match url="(.*)" ignoreCase="false" /><conditions trackAllCaptures="true">
				<add input="{REQUEST_URI}" pattern="^/([a-zA-Z]+)/([0-9]+)" />
				<add input="{QUERY_STRING}" pattern="p2=([a-z]+)" /></conditions>
				<action type="Redirect" url="blog/{R:0}/{C:4}" appendQueryString="false" />`)),
			target: "/article/23?p1=123&p2=abc",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "t", Status: 301, Location: "/blog/article/23/abc"},
		},
		{
			// ASP.NET throws IndexOutOfRangeException; IIS expands a missing
			// back-reference to "".
			name: "back-reference beyond the captures is empty",
			rules: rules(rule("t", ``, `<match url="(.*)" /><conditions trackAllCaptures="true">
				<add input="{QUERY_STRING}" pattern="p2=([a-z]+)" /></conditions>
				<action type="Redirect" url="blog/{R:0}/{C:9}" appendQueryString="false" />`)),
			target: "/article/23?p2=abc",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "t", Status: 301, Location: "/blog/article/23/"},
		},
		{
			name: "without trackAllCaptures {C:n} are the last condition's",
			rules: rules(rule("t", ``, `<match url="(.*)" /><conditions>
				<add input="{HTTP_HOST}" pattern="^(www\.)?(.+)$" />
				<add input="{QUERY_STRING}" pattern="id=(\d+)" /></conditions>
				<action type="Rewrite" url="{C:1}/{C:2}" appendQueryString="false" />`)),
			target: "/a?id=42",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "t", Path: "/42/"},
		},
		{
			name: "a negated condition keeps the previous captures",
			rules: rules(rule("canon", ``, `<match url="(.*)" /><conditions>
				<add input="{HTTP_HOST}" pattern="^www\.(.+)$" />
				<add input="{HTTPS}" pattern="on" negate="true" /></conditions>
				<action type="Redirect" url="http://{C:1}/{R:1}" />`)),
			target: "/p",
			edit:   func(in *rewrite.Input) { in.Host = "www.example.org" },
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "canon", Status: 301, Location: "http://example.org/p"},
		},
		{
			name: "rewrite map in a condition",
			rules: rules(rule("Proxy", ``, `<match url="([^/]*)(/?.*)" /><conditions>
				<add input="{environmentMap:{R:1}}" pattern="(.+)" /></conditions>
				<action type="Rewrite" url="/{C:1}{R:2}" />`)) +
				`<rewriteMaps><rewriteMap name="environmentMap"><add key="dev" value="dev-app" /></rewriteMap></rewriteMaps>`,
			target: "/DEV/path",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "Proxy", Path: "/dev-app/path"},
		},
		{
			name: "rewrite map miss",
			rules: rules(rule("Proxy", ``, `<match url="([^/]*)(/?.*)" /><conditions>
				<add input="{environmentMap:{R:1}}" pattern="(.+)" /></conditions>
				<action type="Rewrite" url="/{C:1}{R:2}" />`)) +
				`<rewriteMaps><rewriteMap name="environmentMap"><add key="dev" value="dev-app" /></rewriteMap></rewriteMaps>`,
			target: "/qa/path",
			want:   rewrite.Outcome{},
		},
		{
			name: "map with defaultValue, case-sensitive keys",
			rules: rules(rule("m", ``, `<match url=".*" /><action type="Rewrite" url="/{Legacy:{R:0}}" />`)) +
				`<rewriteMaps><rewriteMap name="Legacy" defaultValue="fallback" ignoreCase="false"><add key="Old" value="new" /></rewriteMap></rewriteMaps>`,
			target: "/old",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "m", Path: "/fallback"},
		},
		{
			name:   "custom response",
			rules:  rules(rule("Forbidden", ``, `<match url=".*" /><action type="CustomResponse" statusCode="403" subStatusCode="502" statusReason="reason" statusDescription="no {R:0}" />`)),
			target: "/article/10/hey",
			want:   rewrite.Outcome{Action: rewrite.CustomResponse, Rule: "Forbidden", Status: 403, SubStatus: 502, Reason: "reason", Description: "no article/10/hey"},
		},
		{
			name:   "abort request",
			rules:  rules(rule("a", ``, `<match url="^wp-admin" /><action type="AbortRequest" />`)),
			target: "/wp-admin/x.php",
			want:   rewrite.Outcome{Action: rewrite.Abort, Rule: "a"},
		},
		{
			name:   "wildcard: each * captures, the whole input must match",
			rules:  rules(rule("w", `patternSyntax="Wildcard"`, `<match url="*bar*.aspx" /><action type="Rewrite" url="{R:1}-{R:2}?all={R:0}" />`)),
			target: "/foobargoo.aspx",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "w", Path: "/foo-goo", Query: "all=foobargoo.aspx"},
		},
		{
			name:   "wildcard: ? matches one character and does not capture",
			rules:  rules(rule("w", `patternSyntax="Wildcard"`, `<match url="page?/*" /><action type="Rewrite" url="p/{R:1}" />`)),
			target: "/page1/x.html",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "w", Path: "/p/x.html"},
		},
		{
			name:   "wildcard is anchored and literal",
			rules:  rules(rule("w", `patternSyntax="Wildcard"`, `<match url="a.c" /><action type="Rewrite" url="hit" />`)),
			target: "/abc",
			want:   rewrite.Outcome{},
		},
		{
			name: "wildcard conditions",
			rules: rules(rule("bots", `patternSyntax="Wildcard"`, `<match url="*" /><conditions logicalGrouping="MatchAny">
				<add input="{HTTP_USER_AGENT}" pattern="*BadBot*" /><add input="{REMOTE_ADDR}" pattern="10.66.*" /></conditions>
				<action type="CustomResponse" statusCode="403" />`)),
			target: "/x",
			edit:   func(in *rewrite.Input) { in.RemoteAddr = "10.66.0.1" },
			want:   rewrite.Outcome{Action: rewrite.CustomResponse, Rule: "bots", Status: 403},
		},
		{
			name:   "exact match ignores case by default",
			rules:  rules(rule("e", `patternSyntax="ExactMatch"`, `<match url="Old/Page.htm" /><action type="Redirect" url="new/{R:0}" redirectType="Temporary" />`)),
			target: "/old/page.htm",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "e", Status: 307, Location: "/new/old/page.htm"},
		},
		{
			name:   "exact match is whole",
			rules:  rules(rule("e", `patternSyntax="ExactMatch"`, `<match url="old" /><action type="Redirect" url="new" />`)),
			target: "/old/page.htm",
			want:   rewrite.Outcome{},
		},
		{
			name:   "negated match",
			rules:  rules(rule("n", ``, `<match url="^(index\.html|api/)" negate="true" /><action type="Rewrite" url="index.html" />`)),
			target: "/some/route",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "n", Path: "/index.html"},
		},
		{
			name: "rules chain: the next rule sees the rewritten URL",
			rules: rules(rule("one", ``, `<match url="^a$" /><action type="Rewrite" url="b" />`),
				rule("two", ``, `<match url="^b$" /><action type="Rewrite" url="c" />`)),
			target: "/a",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "two", Path: "/c"},
		},
		{
			name: "stopProcessing ends after a rewrite",
			rules: rules(rule("one", `stopProcessing="true"`, `<match url="^a$" /><action type="Rewrite" url="b" />`),
				rule("two", ``, `<match url="^b$" /><action type="Rewrite" url="c" />`)),
			target: "/a",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "one", Path: "/b"},
		},
		{
			name: "None with stopProcessing shields later rules",
			rules: rules(rule("api", `stopProcessing="true"`, `<match url="^api/" /><action type="None" />`),
				rule("spa", ``, `<match url=".*" /><action type="Rewrite" url="index.html" />`)),
			target: "/api/x",
			want:   rewrite.Outcome{},
		},
		{
			name: "None without stopProcessing goes on",
			rules: rules(rule("api", ``, `<match url="^api/" /><action type="None" />`),
				rule("spa", ``, `<match url=".*" /><action type="Rewrite" url="index.html" />`)),
			target: "/api/x",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "spa", Path: "/index.html"},
		},
		{
			name: "a redirect ends processing without stopProcessing",
			rules: rules(rule("r", ``, `<match url="^a$" /><action type="Redirect" url="b" redirectType="SeeOther" />`),
				rule("x", ``, `<match url=".*" /><action type="AbortRequest" />`)),
			target: "/a",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "r", Status: 303, Location: "/b"},
		},
		{
			name: "disabled rules are skipped",
			rules: rules(rule("off", `enabled="false"`, `<match url=".*" /><action type="AbortRequest" />`),
				rule("on", ``, `<match url=".*" /><action type="Rewrite" url="ok" />`)),
			target: "/a",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "on", Path: "/ok"},
		},
		{
			name:   "the pattern sees the decoded path, the rewrite re-encodes it",
			rules:  rules(rule("sp", ``, `<match url="^docs/(a b)$" /><action type="Rewrite" url="files/{R:1}" />`)),
			target: "/docs/a%20b",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "sp", Path: "/files/a%20b"},
		},
		{
			name:   "an encoded slash is a slash to the pattern",
			rules:  rules(rule("sl", ``, `<match url="^a/b$" /><action type="Rewrite" url="hit" />`)),
			target: "/a%2Fb",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "sl", Path: "/hit"},
		},
		{
			name:   "a rewritten path is cleaned as a client's: a double-escaped dot segment goes",
			rules:  rules(rule("old", ``, `<match url="^old/(.*)" /><action type="Rewrite" url="new/{R:1}" />`)),
			target: "/old/%252e%252e/admin/secret.txt",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "old", Path: "/admin/secret.txt"},
		},
		{
			name: "the next rule sees the cleaned rewritten path",
			rules: rules(rule("old", ``, `<match url="^old/(.*)" /><action type="Rewrite" url="new/{R:1}" />`),
				rule("admin", ``, `<match url="^admin/" /><action type="CustomResponse" statusCode="403" />`)),
			target: "/old/%252e%252e/admin/secret.txt",
			want:   rewrite.Outcome{Action: rewrite.CustomResponse, Rule: "admin", Status: 403},
		},
		{
			name:   "UrlEncode keeps a captured ? out of the query",
			rules:  rules(rule("e", ``, `<match url="^q/(.*)$" /><action type="Rewrite" url="search?q={UrlEncode:{R:1}}" appendQueryString="false" />`)),
			target: "/q/a%3Fb%26c d",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "e", Path: "/search", Query: "q=a%3Fb%26c%20d"},
		},
		{
			name:   "UrlDecode",
			rules:  rules(rule("d", ``, `<match url=".*" /><conditions><add input="{UrlDecode:{QUERY_STRING}}" pattern="^to=(.+)$" /></conditions><action type="Redirect" url="{C:1}" appendQueryString="false" />`)),
			target: "/go?to=%2Fhome%2Fa",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "d", Status: 301, Location: "/home/a"},
		},
		{
			name:   "redirect appends the query string after the url's own",
			rules:  rules(rule("q", ``, `<match url="^old$" /><action type="Redirect" url="new?y=2" redirectType="PermanentRedirect" />`)),
			target: "/old?x=1",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "q", Status: 308, Location: "/new?y=2&x=1"},
		},
		{
			name:   "redirect appends the query string",
			rules:  rules(rule("q", ``, `<match url="^old$" /><action type="Redirect" url="new" />`)),
			target: "/old?x=1",
			want:   rewrite.Outcome{Action: rewrite.Redirect, Rule: "q", Status: 301, Location: "/new?x=1"},
		},
		{
			name:   "rewrite with appendQueryString false drops the query",
			rules:  rules(rule("q", ``, `<match url="^old$" /><action type="Rewrite" url="new" appendQueryString="false" />`)),
			target: "/old?x=1",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "q", Path: "/new"},
		},
		{
			name:   "rewrite appends the original query to the url's own",
			rules:  rules(rule("q", ``, `<match url="^old$" /><action type="Rewrite" url="new?y=2" />`)),
			target: "/old?x=1",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "q", Path: "/new", Query: "y=2&x=1"},
		},
		{
			name:   "header server variables",
			rules:  rules(rule("h", ``, `<match url=".*" /><conditions><add input="{HTTP_X_FORWARDED_PROTO}" pattern="^http$" /></conditions><action type="Redirect" url="https://{SERVER_NAME}/{R:0}" />`)),
			target: "/a",
			edit: func(in *rewrite.Input) {
				in.Host = "example.com:8080"
				in.Header.(http.Header).Set("X-Forwarded-Proto", "http")
			},
			want: rewrite.Outcome{Action: rewrite.Redirect, Rule: "h", Status: 301, Location: "https://example.com/a"},
		},
		{
			name:   "method, port and remote address",
			rules:  rules(rule("v", ``, `<match url=".*" /><action type="Rewrite" url="/{REQUEST_METHOD}/{SERVER_PORT}/{REMOTE_ADDR}/{SERVER_PROTOCOL}/{UNENCODED_URL}" appendQueryString="false" />`)),
			target: "/a%20b?c",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "v", Path: "/GET/80/192.0.2.7/HTTP/1.1/a%20b", Query: "c"},
		},
		{
			name:   "rules of a virtual app see the path below it and rewrite within it",
			rules:  rules(rule("wp", ``, `<match url="^post/(\d+)$" /><action type="Rewrite" url="index.php?p={R:1}" />`)),
			opts:   rewrite.Options{AppPath: "/blog/"},
			target: "/Blog/post/7",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "wp", Path: "/blog/index.php", Query: "p=7"},
		},
		{
			name: "a rewrite into another app ends this app's rules",
			rules: rules(rule("move", ``, `<match url="^old/(.*)" /><action type="Rewrite" url="/shop/{R:1}" />`),
				rule("all", ``, `<match url=".*" /><action type="AbortRequest" />`)),
			opts:   rewrite.Options{AppPath: "/blog"},
			target: "/blog/old/cart",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "move", Path: "/shop/cart"},
		},
		{
			name:   "dot segments in the result are removed",
			rules:  rules(rule("dots", ``, `<match url="^x/(.*)" /><action type="Rewrite" url="a/{R:1}" />`)),
			opts:   rewrite.Options{AppPath: "/blog"},
			target: "/blog/x/%2E%2E/%2E%2E/admin",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "dots", Path: "/admin"},
		},
		{
			name:   "MatchAny with no condition matching",
			rules:  rules(rule("any", ``, `<match url=".*" /><conditions logicalGrouping="MatchAny"><add input="{HTTP_HOST}" pattern="^a\." /><add input="{HTTP_HOST}" pattern="^b\." /></conditions><action type="AbortRequest" />`)),
			target: "/",
			want:   rewrite.Outcome{},
		},
		{
			name:   "MatchAny gives the captures of the condition that matched",
			rules:  rules(rule("any", ``, `<match url=".*" /><conditions logicalGrouping="MatchAny"><add input="{HTTP_HOST}" pattern="^(a)\." /><add input="{HTTP_HOST}" pattern="^(ex)ample" /></conditions><action type="Rewrite" url="{C:1}" />`)),
			target: "/",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "any", Path: "/ex"},
		},
		{
			name: "serverVariables set request headers that later rules see",
			rules: rules(rule("proxy", ``, `<match url="^shop/([\s\S]*)" /><serverVariables>
				<set name="HTTP_X_ORIGINAL_HOST" value="{HTTP_HOST}" />
				<set name="HTTP_X_FORWARDED_PROTO" value="https" replace="false" />
				<set name="HTTP_X_PATH" value="{R:1}" /></serverVariables>
				<action type="Rewrite" url="store/{R:1}" />`),
				rule("seen", ``, `<match url=".*" /><conditions><add input="{HTTP_X_ORIGINAL_HOST}" pattern="^example\.com$" /></conditions><action type="None" />`)),
			target: "/shop/a%0D%0ASet-Cookie:%20x=1",
			edit:   func(in *rewrite.Input) { in.Header.(http.Header).Set("X-Forwarded-Proto", "http") },
			want: rewrite.Outcome{Action: rewrite.Rewrite, Rule: "proxy", Path: "/store/a%0D%0ASet-Cookie:%20x=1",
				SetHeaders: [][2]string{{"X-Original-Host", "example.com"}, {"X-Path", "aSet-Cookie: x=1"}}},
		},
		{
			name:   "ECMAScript lookahead and back-reference in the pattern",
			rules:  rules(rule("la", ``, `<match url="^(?!admin)(\w)\1(.*)$" /><action type="Rewrite" url="dbl/{R:2}" />`)),
			target: "/eexyz",
			want:   rewrite.Outcome{Action: rewrite.Rewrite, Rule: "la", Path: "/dbl/xyz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := compile(t, tt.rules, tt.opts)
			in := request(tt.target)
			if tt.edit != nil {
				tt.edit(in)
			}
			got, err := rs.Evaluate(in)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Evaluate(%s)\n got %+v\nwant %+v", tt.target, got, tt.want)
			}
		})
	}
}

// TestRequestFilename checks IsFile and IsDirectory against a real app
// folder, as the SPA fallback rule that publishing templates use needs.
func TestRequestFilename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.html", "assets/app.js", "a b.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spa := rules(rule("SPA", `stopProcessing="true"`, `<match url=".*" /><conditions logicalGrouping="MatchAll">
		<add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" />
		<add input="{REQUEST_FILENAME}" matchType="IsDirectory" negate="true" /></conditions>
		<action type="Rewrite" url="/index.html" />`))
	fileOnly := rules(rule("F", ``, `<match url=".*" /><conditions><add input="{REQUEST_FILENAME}" matchType="IsFile" /></conditions><action type="CustomResponse" statusCode="200" statusReason="{REQUEST_FILENAME}" />`))
	tests := []struct {
		rules, target string
		want          rewrite.Action
	}{
		{spa, "/assets/app.js", rewrite.None},
		{spa, "/assets", rewrite.None},
		{spa, "/assets/", rewrite.None},
		{spa, "/a%20b.txt", rewrite.None},
		{spa, "/orders/42", rewrite.Rewrite},
		{spa, "/index.html/x", rewrite.Rewrite},
		{fileOnly, "/index.html", rewrite.CustomResponse},
		{fileOnly, "/assets", rewrite.None},
		// The path is cleaned before it is mapped: no way out of the folder.
		{fileOnly, "/assets/../index.html", rewrite.CustomResponse},
		{fileOnly, "/../" + filepath.Base(dir) + "/index.html", rewrite.None},
		{fileOnly, "/%2E%2E/%2E%2E/%2E%2E/etc/passwd", rewrite.None},
	}
	for _, opts := range []rewrite.Options{{Dir: dir}, {Dir: dir, AppPath: "/app"}} {
		for _, tt := range tests {
			rs := compile(t, tt.rules, opts)
			target := tt.target
			if opts.AppPath != "" {
				target = opts.AppPath + target
			}
			got, err := rs.Evaluate(request(target))
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != tt.want {
				t.Errorf("app %q %s: %v, want %v", opts.AppPath, target, got.Action, tt.want)
			}
			if got.Action == rewrite.CustomResponse && !strings.HasPrefix(got.Reason, dir+"/") {
				t.Errorf("REQUEST_FILENAME = %q, want a path in %s", got.Reason, dir)
			}
		}
	}
	// Without a folder nothing is a file.
	rs := compile(t, fileOnly, rewrite.Options{})
	if got, _ := rs.Evaluate(request("/index.html")); got.Action != rewrite.None {
		t.Errorf("no Dir: %v, want None", got.Action)
	}
}

// TestBackslashTargets runs the rules of the web.config every standalone
// Blazor WebAssembly publish writes: '\' in a target is a '/', as in IIS,
// so files are found under wwwroot and the rest falls back to its index.
func TestBackslashTargets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wwwroot", "_framework"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"wwwroot/index.html", "wwwroot/_framework/blazor.webassembly.js"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blazor := rules(
		rule("Serve subdir", "", `<match url=".*" /><action type="Rewrite" url="wwwroot\{R:0}" />`),
		rule("SPA fallback routing", `stopProcessing="true"`, `<match url=".*" /><conditions logicalGrouping="MatchAll">
			<add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" /></conditions>
			<action type="Rewrite" url="wwwroot\" />`))
	redirect := rules(rule("R", "", `<match url="^old/(.*)" /><action type="Redirect" url="new\{R:1}?q=a\b" />`))
	tests := []struct {
		rules, target string
		want          rewrite.Outcome
	}{
		{blazor, "/_framework/blazor.webassembly.js", rewrite.Outcome{Action: rewrite.Rewrite, Rule: "Serve subdir", Path: "/wwwroot/_framework/blazor.webassembly.js"}},
		{blazor, "/counter", rewrite.Outcome{Action: rewrite.Rewrite, Rule: "SPA fallback routing", Path: "/wwwroot/"}},
		{blazor, "/a%5Cb", rewrite.Outcome{Action: rewrite.Rewrite, Rule: "SPA fallback routing", Path: "/wwwroot/"}},
		// The query keeps its '\' (escaped); the path's are '/'.
		{redirect, "/old/x", rewrite.Outcome{Action: rewrite.Redirect, Rule: "R", Status: 301, Location: "/new/x?q=a%5Cb"}},
	}
	for _, tt := range tests {
		got, err := compile(t, tt.rules, rewrite.Options{Dir: dir}).Evaluate(request(tt.target))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s\n got %+v\nwant %+v", tt.target, got, tt.want)
		}
	}
}

// TestMatchTimeout checks that a pattern with catastrophic backtracking
// against hostile input ends in an error instead of stalling.
func TestMatchTimeout(t *testing.T) {
	t.Parallel()
	hostile := "/" + strings.Repeat("a", 64) + "!"
	for _, tt := range []struct{ name, rules string }{
		{"match", rules(rule("evil", ``, `<match url="^(a+)+$" /><action type="AbortRequest" />`))},
		{"condition", rules(rule("evil", ``, `<match url=".*" /><conditions><add input="{URL}" pattern="^/(a|aa)+$" /></conditions><action type="AbortRequest" />`))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := compile(t, tt.rules, rewrite.Options{MatchTimeout: 20 * time.Millisecond})
			got, err := rs.Evaluate(request(hostile))
			if err == nil || !strings.Contains(err.Error(), "evil") {
				t.Fatalf("Evaluate = %+v, %v; want a timeout error naming the rule", got, err)
			}
			if got.Action != rewrite.None {
				t.Errorf("action %v on error, want None", got.Action)
			}
		})
	}
}

func TestRewriteToAnotherServerFails(t *testing.T) {
	t.Parallel()
	rs := compile(t, rules(rule("proxy", ``, `<match url="(.*)" /><action type="Rewrite" url="{HTTP_X_TARGET}/{R:1}" />`)), rewrite.Options{})
	in := request("/a")
	in.Header.(http.Header).Set("X-Target", "http://internal")
	if _, err := rs.Evaluate(in); err == nil || !strings.Contains(err.Error(), "proxyUpstreams") {
		t.Errorf("err = %v, want a rewrite to another server refused", err)
	}
}

// A rewrite to one of Options.Upstreams goes there (Outcome.Upstream),
// from a written host or a variable; any other server, or https, is
// refused: at compile time when the host is written, else per request.
func TestRewriteToUpstream(t *testing.T) {
	t.Parallel()
	opts := rewrite.Options{Upstreams: []string{"127.0.0.1:3000", "node.internal:80"}}
	rs := compile(t, rules(
		rule("api", ` stopProcessing="false"`, `<match url="^api/(.*)" /><action type="Rewrite" url="http://127.0.0.1:3000/{R:1}" />`),
		rule("after", ``, `<match url=".*" /><action type="Rewrite" url="/never" />`)), opts)
	out, err := rs.Evaluate(request("/api/items?id=7"))
	if err != nil || out.Action != rewrite.Rewrite || out.Upstream != "127.0.0.1:3000" || out.Path != "/items" || out.Query != "id=7" {
		t.Errorf("Evaluate = %+v, %v; want a rewrite to 127.0.0.1:3000 /items?id=7 and no rule after it", out, err)
	}
	dyn := compile(t, rules(rule("dyn", ``, `<match url="(.*)" /><action type="Rewrite" url="{HTTP_X_TARGET}/{R:1}" />`)), opts)
	for target, want := range map[string]string{"http://NODE.internal": "node.internal:80", "http://127.0.0.1:4000": "", "https://127.0.0.1:3000": ""} {
		in := request("/a")
		in.Header.(http.Header).Set("X-Target", target)
		out, err := dyn.Evaluate(in)
		if want == "" && err == nil || want != "" && (err != nil || out.Upstream != want) {
			t.Errorf("rewrite to %s: %+v, %v; want upstream %q", target, out, err, want)
		}
	}
	for _, url := range []string{"http://127.0.0.1:4000/{R:1}", "https://127.0.0.1:3000/{R:1}", "http://node.internal:8080/"} {
		doc := `<configuration><system.webServer><aspNetCore processPath="app" /><rewrite>` +
			rules(rule("x", ``, `<match url="(.*)" /><action type="Rewrite" url="`+url+`" />`)) + `</rewrite></system.webServer></configuration>`
		app, err := webconfig.Decode(strings.NewReader(doc), "web.config", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rewrite.Compile(app.Rewrite, opts); err == nil {
			t.Errorf("Compile with a rewrite to %s: no error", url)
		}
	}
}

func TestNilRuleSet(t *testing.T) {
	t.Parallel()
	rs, err := rewrite.Compile(nil, rewrite.Options{})
	if err != nil || rs != nil || rs.Len() != 0 {
		t.Fatalf("Compile(nil) = %v, %v", rs, err)
	}
	if got, err := rs.Evaluate(request("/x")); err != nil || !reflect.DeepEqual(got, rewrite.Outcome{}) {
		t.Errorf("nil Evaluate = %+v, %v", got, err)
	}
}

// TestGlobalRules checks server-level rules: they see the whole path, and
// {REQUEST_FILENAME} maps into the folder of the app the request was
// routed to.
func TestGlobalRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := rules(
		rule("moved", ``, `<match url="^blog/old/(.*)" /><action type="Rewrite" url="blog/new/{R:1}" />`),
		rule("files", `stopProcessing="true"`, `<match url=".*" /><conditions><add input="{REQUEST_FILENAME}" matchType="IsFile" /></conditions><action type="CustomResponse" statusCode="200" statusReason="{REQUEST_FILENAME}" />`),
	)
	rs := compile(t, set, rewrite.Options{Global: true, AppPath: "/ignored", Dir: "/ignored"})
	in := request("/blog/old/x")
	in.AppPath, in.AppDir = "/blog", dir
	if got, _ := rs.Evaluate(in); got.Action != rewrite.Rewrite || got.Path != "/blog/new/x" {
		t.Errorf("global rewrite = %+v, want /blog/new/x", got)
	}
	in = request("/Blog/file.txt")
	in.AppPath, in.AppDir = "/blog", dir
	if got, _ := rs.Evaluate(in); got.Action != rewrite.CustomResponse || got.Reason != filepath.Join(dir, "file.txt") {
		t.Errorf("global REQUEST_FILENAME = %+v, want %s", got, filepath.Join(dir, "file.txt"))
	}
	in.AppDir = ""
	if got, _ := rs.Evaluate(in); got.Action != rewrite.None {
		t.Errorf("without an app folder: %+v, want None", got)
	}
}

// A rule of a <location path> (config.RewriteRule.Base) applies below that
// path only, sees the URL relative to it and resolves relative URLs there.
func TestRuleOfLocation(t *testing.T) {
	t.Parallel()
	spec := &config.Rewrite{Rules: []config.RewriteRule{{
		Name: "fallback", Base: "spa",
		Match:  config.RewriteMatch{URL: "^page/(.*)"},
		Action: config.RewriteAction{Type: "Rewrite", URL: "index.html?p={R:1}"},
	}}}
	rs, err := rewrite.Compile(spec, rewrite.Options{AppPath: "/shop"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := rs.Evaluate(request("/shop/spa/page/7"))
	if err != nil || out.Action != rewrite.Rewrite || out.Path != "/shop/spa/index.html" || out.Query != "p=7" {
		t.Errorf("below the location: %+v, %v; want /shop/spa/index.html?p=7", out, err)
	}
	if out, err := rs.Evaluate(request("/shop/page/7")); err != nil || out.Action != rewrite.None {
		t.Errorf("outside the location: %+v, %v; want no rewrite", out, err)
	}
}
