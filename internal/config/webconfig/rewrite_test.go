package webconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRewriteErrors checks that every bad <rewrite> or <httpRedirect> value
// is refused with the file, the line and the attribute concerned.
func TestRewriteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		inner string // after line 2's <system.webServer><aspNetCore/>, starting on line 3
		want  string
	}{
		{"custom response without status", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="CustomResponse" /></rule></rules></rewrite>`,
			`web.config:4: action attribute "statusCode": required for a CustomResponse action`},
		{"bad action type", `<rewrite><rules><rule name="a"><match url=".*" />
<action
  type="Forward" /></rule></rules></rewrite>`,
			`web.config:5: action attribute "type": "Forward" is not one of None, Rewrite, Redirect, CustomResponse, AbortRequest`},
		{"bad redirect type", `<rewrite><rules><rule name="a"><match url=".*" />
<action type="Redirect" url="x" redirectType="304" /></rule></rules></rewrite>`,
			`web.config:4: action attribute "redirectType": "304" is not a redirect type`},
		{"bad bool", `<rewrite><rules><rule name="a" stopProcessing="yes"><match url=".*" /><action type="None" /></rule></rules></rewrite>`,
			`web.config:3: rule attribute "stopProcessing": "yes" is not true or false`},
		{"bad pattern syntax", `<rewrite><rules><rule name="a" patternSyntax="Glob"><match url=".*" /></rule></rules></rewrite>`,
			`web.config:3: rule attribute "patternSyntax": "Glob" is not one of ECMAScript, Wildcard, ExactMatch`},
		{"duplicate rule name", `<rewrite><rules><rule name="a"><match url=".*" /></rule>
<rule name="A"><match url=".*" /></rule></rules></rewrite>`,
			`web.config:4: rule attribute "name": "A" is used twice (first on line 3`},
		{"rule without match", `<rewrite><rules>
<rule name="a"><action type="None" /></rule></rules></rewrite>`,
			`web.config:4: <rule>: rule "a" has no <match>`},
		{"unknown attribute", `<rewrite><rules><rule name="a"><match url=".*" pattern="x" /></rule></rules></rewrite>`,
			`web.config:3: match attribute "pattern": unknown attribute`},
		{"condition without input", `<rewrite><rules><rule name="a"><match url=".*" /><conditions>
<add pattern="x" /></conditions></rule></rules></rewrite>`,
			`web.config:4: add attribute "input": required attribute of a condition is missing`},
		{"global rules in web.config", `<rewrite>
<globalRules /></rewrite>`,
			`web.config:4: <globalRules>: allowed only at server level`},
		// Ported from ASP.NET Core's InvalidUrlRewriteFormatExceptionHandlingTests.
		{"match without url", `<rewrite><rules><rule name="a">
<match /><action type="Rewrite" url="foo" /></rule></rules></rewrite>`,
			`web.config:4: match attribute "url": required attribute is missing`},
		{"bad logicalGrouping", `<rewrite><rules><rule name="a"><match url="(.*)/$" />
<conditions logicalGrouping="foo"><add input="{REQUEST_FILENAME}" matchType="isFile" negate="true" /></conditions></rule></rules></rewrite>`,
			`web.config:4: conditions attribute "logicalGrouping": "foo" is not one of MatchAll, MatchAny`},
		{"bad matchType", `<rewrite><rules><rule name="a"><match url="(.*)/$" /><conditions>
<add input="{REQUEST_FILENAME}" matchType="foo" /></conditions></rule></rules></rewrite>`,
			`web.config:4: add attribute "matchType": "foo" is not one of Pattern, IsFile, IsDirectory`},
		{"bad enabled", `<rewrite><rules>
<rule name="a" enabled="foo"><match url="(.*)/$" /></rule></rules></rewrite>`,
			`web.config:4: rule attribute "enabled": "foo" is not true or false`},
		{"bad match ignoreCase", `<rewrite><rules><rule name="a">
<match url="(.*)/$" ignoreCase="foo" /></rule></rules></rewrite>`,
			`web.config:4: match attribute "ignoreCase": "foo" is not true or false`},
		{"bad condition negate", `<rewrite><rules><rule name="a"><match url="(.*)/$" /><conditions>
<add input="{REQUEST_FILENAME}" matchType="IsFile" negate="foo" /></conditions></rule></rules></rewrite>`,
			`web.config:4: add attribute "negate": "foo" is not true or false`},
		{"bad trackAllCaptures", `<rewrite><rules><rule name="a"><match url="(.*)/$" />
<conditions trackAllCaptures="foo" /></rule></rules></rewrite>`,
			`web.config:4: conditions attribute "trackAllCaptures": "foo" is not true or false`},
		{"bad appendQueryString", `<rewrite><rules><rule name="a"><match url="(.*)/$" />
<action type="Redirect" url="{R:1}" appendQueryString="foo" /></rule></rules></rewrite>`,
			`web.config:4: action attribute "appendQueryString": "foo" is not true or false`},
		{"httpRedirect without destination", `
<httpRedirect enabled="true" />`,
			`web.config:4: httpRedirect attribute "destination": required when enabled is true`},
		{"two httpRedirects for one path", `<httpRedirect enabled="true" destination="/x" />
</system.webServer><location path="a"><system.webServer><httpRedirect enabled="false" /></system.webServer></location>
<location path="A/"><system.webServer><httpRedirect enabled="false" /></system.webServer></location><system.webServer>`,
			`web.config:5: <httpRedirect>: second <httpRedirect> for the same path (the first is on line 4)`},
		{"httpRedirect bad status", `<httpRedirect enabled="true" destination="/x" httpResponseStatus="Moved" />`,
			`web.config:3: httpRedirect attribute "httpResponseStatus": "Moved" is not a redirect type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := "<configuration>\n<system.webServer><aspNetCore processPath=\"a\" />\n" + tt.inner + "\n</system.webServer></configuration>"
			_, err := decode(strings.NewReader(doc), "web.config", "/srv/app", nil)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Errorf("error %T is not an *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n %s\nwant prefix\n %s", err, tt.want)
			}
		})
	}
}

// TestRewriteUnsupported checks that what Gatehouse does not carry out is
// named, and the rest still applies.
func TestRewriteUnsupported(t *testing.T) {
	t.Parallel()
	doc := `<configuration><system.webServer><aspNetCore processPath="a" />
<rewrite><rules><rule name="a"><match url=".*" />
<serverVariables><set name="HTTP_X_ORIGINAL_HOST" value="{HTTP_HOST}" /><set name="REMOTE_ADDR" value="{HTTP_X_REAL_IP}" /></serverVariables>
<action type="Rewrite" url="x" /></rule></rules>
<outboundRules><rule name="o"><match serverVariable="RESPONSE_X" pattern=".*" /><action type="Rewrite" value="y" /></rule><rule name="body"><match filterByTags="CustomTags" customTags="t" pattern=".*" /></rule></outboundRules>
<providers /></rewrite></system.webServer></configuration>`
	app, err := decode(strings.NewReader(doc), "web.config", "/srv/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`web.config:3: <set>: rule "a": server variable REMOTE_ADDR: only request headers (HTTP_*) can be set`,
		`web.config:5: <match filterByTags>: CustomTags are not supported`,
		`web.config:5: <outboundRules/rule>: rule "body" rewrites the response body in custom tags only (filterByTags CustomTags): not supported, NOT applied`,
		`web.config:6: <providers>: URL Rewrite providers are not supported`,
	}
	if len(app.Unsupported) != len(want) {
		t.Fatalf("Unsupported = %q", app.Unsupported)
	}
	for i, w := range want {
		if !strings.HasPrefix(app.Unsupported[i], w) {
			t.Errorf("Unsupported[%d] = %q, want prefix %q", i, app.Unsupported[i], w)
		}
	}
	if app.Rewrite == nil || len(app.Rewrite.Outbound) != 1 || app.Rewrite.Outbound[0].Match.ServerVariable != "RESPONSE_X" {
		t.Errorf("Outbound = %+v", app.Rewrite)
	}
	if app.Rewrite == nil || len(app.Rewrite.Rules) != 1 || app.Rewrite.Rules[0].Action.Type != "Rewrite" ||
		len(app.Rewrite.Rules[0].ServerVariables) != 1 || app.Rewrite.Rules[0].ServerVariables[0].Name != "HTTP_X_ORIGINAL_HOST" {
		t.Errorf("Rewrite = %+v", app.Rewrite)
	}
}

func TestLoadGlobalRules(t *testing.T) {
	t.Parallel()
	rw, unsupported, err := LoadGlobalRules("testdata/global-rules.config")
	if err != nil {
		t.Fatal(err)
	}
	if len(rw.Rules) != 2 || rw.Rules[1].Name != "Shop moved to the API app" || rw.Rules[1].Match.Line != 16 || len(rw.Maps) != 1 {
		t.Errorf("rules = %+v", rw)
	}
	if len(unsupported) != 1 || !strings.HasPrefix(unsupported[0], "testdata/global-rules.config:23: <outboundRules>") {
		t.Errorf("unsupported = %q", unsupported)
	}

	dir := t.TempDir()
	for _, tt := range []struct{ name, doc, want string }{
		{"distributed rules", "<configuration><system.webServer><rewrite>\n<rules /></rewrite></system.webServer></configuration>",
			`:2: <rules>: distributed rules belong in an app's web.config`},
		{"not a config", "<rewrite />", `:1: <rewrite>: root element is <rewrite>, want <configuration>`},
	} {
		path := filepath.Join(dir, tt.name+".config")
		if err := os.WriteFile(path, []byte(tt.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadGlobalRules(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+tt.want) {
			t.Errorf("%s: error %v, want prefix %s%s", tt.name, err, path, tt.want)
		}
	}
	if _, _, err := LoadGlobalRules(filepath.Join(dir, "missing.config")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestRewriteConfigSource reads <rules> and <rewriteMaps> kept in files of
// their own, as the IIS documentation shows for large rewrite maps.
func TestRewriteConfigSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	webConfig := func(inner string) string {
		return "<configuration><system.webServer><aspNetCore processPath=\"a\" />\n<rewrite>\n" + inner + "\n</rewrite></system.webServer></configuration>"
	}
	write("rules.config", `<rules>
<rule name="Legacy" stopProcessing="true"><match url=".*" />
<conditions><add input="{Legacy:{REQUEST_URI}}" pattern="(.+)" /></conditions>
<action type="Redirect" url="{C:1}" /></rule>
</rules>`)
	write("maps/rewritemaps.config", `<?xml version="1.0" encoding="utf-8"?>
<rewriteMaps>
  <rewriteMap name="Legacy"><add key="/old" value="/new" /></rewriteMap>
</rewriteMaps>`)
	write("wrong-root.config", "<rewrite />")

	app, err := decode(strings.NewReader(webConfig(`<rules configSource="rules.config" />
<rewriteMaps configSource="maps\rewritemaps.config" />`)), filepath.Join(dir, "web.config"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rw := app.Rewrite; len(rw.Rules) != 1 || rw.Rules[0].Name != "Legacy" || len(rw.Maps) != 1 || rw.Maps[0].Entries[0].Value != "/new" {
		t.Errorf("Rewrite = %+v", rw)
	}

	for _, tt := range []struct{ name, inner, want string }{
		{"outside the app", `<rules configSource="../rules.config" />`,
			filepath.Join(dir, "web.config") + `:3: rules attribute "configSource": "../rules.config" must be a file in the app folder`},
		{"missing file", `<rewriteMaps configSource="nope.config" />`,
			filepath.Join(dir, "web.config") + `:3: rewriteMaps attribute "configSource": read nope.config:`},
		{"not empty", `<rules configSource="rules.config">
<rule name="y"><match url="a" /></rule></rules>`,
			filepath.Join(dir, "web.config") + `:4: <rule>: <rules configSource> must be empty`},
		{"wrong root", `<rules configSource="wrong-root.config" />`,
			filepath.Join(dir, "wrong-root.config") + `:1: <rewrite>: root element is <rewrite>, want <rules>`},
	} {
		_, err := decode(strings.NewReader(webConfig(tt.inner)), filepath.Join(dir, "web.config"), dir, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error %v\nwant prefix %s", tt.name, err, tt.want)
		}
	}
}
