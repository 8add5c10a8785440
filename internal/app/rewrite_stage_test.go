package app

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuleErrorsAtOpen: URL Rewrite rules that parse but do not compile (a
// bad pattern, an unknown server variable, function or map…) are refused
// when the app is opened, before anything starts, with the file, the line
// and the attribute concerned.
func TestRuleErrorsAtOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		inner string // after line 2's <system.webServer><aspNetCore/>, starting on line 3
		want  string // after the web.config path
	}{
		{"bad regexp", `<rewrite><rules>
<rule name="a"><match url="(unclosed" /><action type="None" /></rule></rules></rewrite>`,
			`:4: match attribute "url": "(unclosed" is not a valid regular expression`},
		{"empty rewrite url", `<rewrite><rules><rule name="a"><match url="(.*)" />
<action type="Rewrite" url="" /></rule></rules></rewrite>`,
			`:4: action attribute "url": required for a Rewrite action`},
		{"duplicate map", `<rewrite><rewriteMaps><rewriteMap name="m" />
<rewriteMap name="M" /></rewriteMaps><rules><rule name="a"><match url=".*" /></rule></rules></rewrite>`,
			`:4: rewriteMap attribute "name": map "M" is defined twice`},
		{"custom response status out of range", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="CustomResponse" statusCode="99" /></rule></rules></rewrite>`,
			`:4: action attribute "statusCode": 99 is not a status code (200–999)`},
		{"rewrite to another server", `<rewrite><rules><rule name="a"><match url="(.*)" />
<action type="Rewrite" url="http://backend/{R:1}" /></rule></rules></rewrite>`,
			`:4: action attribute "url": "http://backend/{R:1}": a rewrite to another server (IIS Application Request Routing) goes only to the servers the site config's proxyUpstreams lists, and it lists none`},
		{"missing brace", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="Redirect" url="{ToLower:{R:1}" /></rule></rules></rewrite>`,
			`:4: action attribute "url": missing "}"`},
		{"back-reference out of range", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="Redirect" url="{R:10}" /></rule></rules></rewrite>`,
			`:4: action attribute "url": {R:10}: a back-reference index is 0–9`},
		{"unknown function", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="Rewrite" url="{Nope:{R:1}}" /></rule></rules></rewrite>`,
			`:4: action attribute "url": {Nope:…}: no such function or rewrite map`},
		{"unknown server variable", `<rewrite><rules><rule name="a"><match url=".*" />
<conditions><add input="{NO_SUCH_VAR}" pattern="x" /></conditions><action type="None" /></rule></rules></rewrite>`,
			`:4: add attribute "input": {NO_SUCH_VAR}: server variable not supported`},
		{"condition without pattern", `<rewrite><rules><rule name="a"><match url=".*" /><conditions>
<add input="{HTTP_HOST}" /></conditions></rule></rules></rewrite>`,
			`:4: add attribute "pattern": required for matchType Pattern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "web.config"), "<configuration>\n<system.webServer><aspNetCore processPath=\"a\" />\n"+tt.inner+"\n</system.webServer></configuration>")
			a, err := Open(t.Context(), dir, Options{Log: slog.New(slog.DiscardHandler)})
			if err == nil {
				a.Close(t.Context())
				t.Fatalf("opened, want %q", tt.want)
			}
			if want := filepath.Join(dir, "web.config") + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n %s\nwant prefix\n %s", err, want)
			}
		})
	}
}

// TestRuleErrorInConfigSource: a rule that does not compile in a file of
// its own (<rules configSource>) is reported with that file and its line.
func TestRuleErrorInConfigSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules.config"), "<rules>\n<rule name=\"x\"><match url=\"(\" /></rule></rules>")
	writeFile(t, filepath.Join(dir, "web.config"), `<configuration><system.webServer><aspNetCore processPath="a" />
<rewrite><rules configSource="rules.config" /></rewrite></system.webServer></configuration>`)
	a, err := Open(t.Context(), dir, Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		a.Close(t.Context())
		t.Fatal("opened with a bad pattern")
	}
	if want := filepath.Join(dir, "rules.config") + `:2: match attribute "url": "(" is not a valid regular expression`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n %s\nwant prefix\n %s", err, want)
	}
}
