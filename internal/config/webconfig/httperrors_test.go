package webconfig

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

func TestHTTPErrorsPages(t *testing.T) {
	t.Parallel()
	app, err := decodeInner(`<httpErrors errorMode="Custom" existingResponse="replace" defaultPath="/srv/app/err/any.htm">
<remove statusCode="404" subStatusCode="-1"/>
<error statusCode="404" path="err\404.htm"/>
<error statusCode="500" subStatusCode="19" path="/errors/500" responseMode="ExecuteURL"/>
<error statusCode="401" path="/login" responseMode="Redirect"/>
<remove statusCode="401"/>
</httpErrors>`)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.HTTPErrors{
		ExistingResponse: "Replace",
		Default:          config.ErrorPage{Mode: "File", Path: "err/any.htm", Line: 3},
		Pages: []config.ErrorPage{
			{Status: 404, Substatus: -1, Mode: "File", Path: "err/404.htm", Line: 5},
			{Status: 500, Substatus: 19, Mode: "ExecuteURL", Path: "/errors/500", Line: 6},
		},
	}
	if !reflect.DeepEqual(app.HTTPErrors, want) {
		t.Errorf("HTTPErrors = %+v, want %+v", app.HTTPErrors, want)
	}
}

func TestHTTPErrorsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, inner, want string }{
		{"dot dot", `<httpErrors><error statusCode="404" path="..\secrets\404.htm"/></httpErrors>`,
			`web.config:3: error attribute "path": "..\\secrets\\404.htm" leaves the app's folder`},
		{"dot dot inside", `<httpErrors><error statusCode="404" path="err/../../x.htm"/></httpErrors>`, `leaves the app's folder`},
		{"absolute outside", `<httpErrors><error statusCode="404" path="/etc/passwd"/></httpErrors>`, `"/etc/passwd" is outside the app's folder`},
		{"windows drive", `<httpErrors><error statusCode="404" path="C:\inetpub\custerr\404.htm"/></httpErrors>`, `is not a path inside the app's folder`},
		{"environment variable", `<httpErrors><error statusCode="404" path="%SystemDrive%\custerr\404.htm"/></httpErrors>`, `is not a path inside the app's folder`},
		{"execute url not a path", `<httpErrors><error statusCode="404" path="errors/404" responseMode="ExecuteURL"/></httpErrors>`, `is not a URL path of the site`},
		{"not an error status", `<httpErrors><error statusCode="302" path="x.htm"/></httpErrors>`, `"302" is not an error status`},
		{"duplicate", "<httpErrors><error statusCode=\"404\" path=\"a.htm\"/>\n<error statusCode=\"404\" path=\"b.htm\"/></httpErrors>",
			`web.config:4: error attribute "statusCode": 404 is already in <httpErrors> (line 3)`},
		{"bad mode", `<httpErrors existingResponse="Sometimes"/>`, `"Sometimes" is not one of Auto, Replace, PassThrough`},
	}
	for _, tt := range tests {
		_, err := decodeInner(tt.inner)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// A <location path="sub"> edits the app's <httpErrors> and
// <dynamicIpSecurity>, whether it comes before or after them.
func TestHTTPErrorsInLocation(t *testing.T) {
	t.Parallel()
	app, err := decodeInner(`</system.webServer><location path="api"><system.webServer>
<httpErrors existingResponse="PassThrough"><remove statusCode="404"/><error statusCode="500" path="api500.htm"/></httpErrors>
<security><dynamicIpSecurity denyAction="NotFound"/></security>
</system.webServer></location><system.webServer>
<httpErrors errorMode="Custom"><error statusCode="404" path="404.htm"/></httpErrors>
<security><dynamicIpSecurity><denyByConcurrentRequests enabled="true" maxConcurrentRequests="3"/></dynamicIpSecurity></security>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Locations) != 1 {
		t.Fatalf("Locations = %+v, want api", app.Locations)
	}
	loc := app.Locations[0]
	want := &config.HTTPErrors{ExistingResponse: "PassThrough", Default: config.ErrorPage{Mode: "File"},
		Pages: []config.ErrorPage{{Status: 500, Substatus: -1, Mode: "File", Path: "api500.htm", Line: 4}}}
	if !reflect.DeepEqual(loc.HTTPErrors, want) || loc.ErrorMode != config.ErrorModeCustom {
		t.Errorf("location httpErrors = %+v (errorMode %q), want %+v (Custom)", loc.HTTPErrors, loc.ErrorMode, want)
	}
	if len(app.HTTPErrors.Pages) != 1 || app.HTTPErrors.ExistingResponse != "Auto" {
		t.Errorf("the app's httpErrors changed: %+v", app.HTTPErrors)
	}
	if d := loc.DynamicIPSecurity; d == nil || d.DenyAction != "NotFound" || d.MaxConcurrentRequests != 3 {
		t.Errorf("location dynamicIpSecurity = %+v, want NotFound with the app's 3 concurrent requests", d)
	}
	if d := app.DynamicIPSecurity; d.DenyAction != "Forbidden" {
		t.Errorf("the app's dynamicIpSecurity changed: %+v", d)
	}
}

// A <location path="sub"> with <rewrite> gets the app's rules, edited by
// its <remove>, followed by its own, which carry the location as Base.
func TestRewriteInLocation(t *testing.T) {
	t.Parallel()
	app, err := decodeInner(`<rewrite><rules>
<rule name="a"><match url="a"/><action type="Rewrite" url="/x"/></rule>
<rule name="b"><match url="b"/><action type="Rewrite" url="/y"/></rule>
</rules></rewrite></system.webServer>
<location path="spa"><system.webServer><rewrite><rules><remove name="a"/>
<rule name="fallback"><match url=".*"/><action type="Rewrite" url="index.html"/></rule>
</rules></rewrite></system.webServer></location><system.webServer>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Rewrite.Rules) != 2 || len(app.Locations) != 1 || app.Locations[0].Rewrite == nil {
		t.Fatalf("rules %+v, locations %+v", app.Rewrite.Rules, app.Locations)
	}
	var got []string
	for _, r := range app.Locations[0].Rewrite.Rules {
		got = append(got, r.Name+"@"+r.Base)
	}
	if want := []string{"b@", "fallback@spa"}; !reflect.DeepEqual(got, want) {
		t.Errorf("location rules = %q, want %q", got, want)
	}
}
