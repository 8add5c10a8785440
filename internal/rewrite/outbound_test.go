package rewrite_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// compileOut parses <outboundRules> (its inside) from a web.config and
// compiles them.
func compileOut(t *testing.T, inside string) (*rewrite.Outbound, error) {
	t.Helper()
	doc := `<configuration><system.webServer><aspNetCore processPath="app" />` +
		"<rewrite><outboundRules>" + inside + "</outboundRules></rewrite></system.webServer></configuration>"
	app, err := webconfig.Decode(strings.NewReader(doc), "web.config", t.TempDir())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return rewrite.CompileOutbound(app.Rewrite, rewrite.Options{})
}

// The outbound rules published web.configs carry: the Server header
// blanked or replaced, HSTS added on HTTPS, Location fixed on redirects
// behind a proxy (a preCondition on RESPONSE_STATUS, a back-reference),
// headers chosen by the response's type, stopProcessing, replace="false".
func TestOutbound(t *testing.T) {
	t.Parallel()
	isRedirect := `<preConditions><preCondition name="IsRedirection"><add input="{RESPONSE_STATUS}" pattern="^3\d\d$" /></preCondition></preConditions>`
	tests := []struct {
		name, rules string
		https       bool
		status      int
		header      http.Header
		want        http.Header
	}{
		{
			name:   "Server blanked",
			rules:  `<rule name="Remove Server"><match serverVariable="RESPONSE_SERVER" pattern=".+" /><action type="Rewrite" value="" /></rule>`,
			header: http.Header{"Server": {"Kestrel"}, "X-Pid": {"1"}},
			want:   http.Header{"X-Pid": {"1"}},
		},
		{
			name:   "Server replaced, spelled as the app spelled it",
			rules:  `<rule name="Server"><match serverVariable="RESPONSE_SERVER" pattern=".*" /><action type="Rewrite" value="Gatehouse" /></rule>`,
			header: http.Header{"Server": {"Kestrel"}},
			want:   http.Header{"Server": {"Gatehouse"}},
		},
		{
			name: "HSTS added on HTTPS",
			rules: `<rule name="Add Strict-Transport-Security when HTTPS" enabled="true"><match serverVariable="RESPONSE_Strict_Transport_Security" pattern=".*" />
				<conditions><add input="{HTTPS}" pattern="on" ignoreCase="true" /></conditions><action type="Rewrite" value="max-age=31536000" /></rule>`,
			https:  true,
			header: http.Header{},
			want:   http.Header{"Strict-Transport-Security": {"max-age=31536000"}},
		},
		{
			name: "HSTS not on HTTP",
			rules: `<rule name="Add Strict-Transport-Security when HTTPS"><match serverVariable="RESPONSE_Strict_Transport_Security" pattern=".*" />
				<conditions><add input="{HTTPS}" pattern="on" /></conditions><action type="Rewrite" value="max-age=31536000" /></rule>`,
			header: http.Header{},
			want:   http.Header{},
		},
		{
			name: "Location behind a proxy",
			rules: isRedirect + `<rule name="Fix Location" preCondition="IsRedirection"><match serverVariable="RESPONSE_Location" pattern="^http://localhost:5000/(.*)" />
				<action type="Rewrite" value="https://{HTTP_HOST}/shop/{R:1}" /></rule>`,
			status: 302,
			header: http.Header{"Location": {"http://localhost:5000/cart?id=1"}},
			want:   http.Header{"Location": {"https://example.com/shop/cart?id=1"}},
		},
		{
			name: "precondition not met",
			rules: isRedirect + `<rule name="Fix Location" preCondition="IsRedirection"><match serverVariable="RESPONSE_Location" pattern="^http://localhost:5000/(.*)" />
				<action type="Rewrite" value="https://{HTTP_HOST}/shop/{R:1}" /></rule>`,
			status: 201,
			header: http.Header{"Location": {"http://localhost:5000/cart"}},
			want:   http.Header{"Location": {"http://localhost:5000/cart"}},
		},
		{
			name: "condition capture from the response type",
			rules: `<rule name="Type"><match serverVariable="RESPONSE_X_Content_Kind" pattern="^$" />
				<conditions><add input="{RESPONSE_Content_Type}" pattern="^(\w+)/" /></conditions><action type="Rewrite" value="{C:1}" /></rule>`,
			header: http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			want:   http.Header{"Content-Type": {"text/html; charset=utf-8"}, "X-Content-Kind": {"text"}},
		},
		{
			name: "stopProcessing",
			rules: `<rule name="one" stopProcessing="true"><match serverVariable="RESPONSE_X_Frame_Options" pattern=".*" /><action type="Rewrite" value="DENY" /></rule>
				<rule name="two"><match serverVariable="RESPONSE_X_Frame_Options" pattern=".*" /><action type="Rewrite" value="SAMEORIGIN" /></rule>`,
			header: http.Header{},
			want:   http.Header{"X-Frame-Options": {"DENY"}},
		},
		{
			name: "replace false keeps the app's value",
			rules: `<rule name="default CSP"><match serverVariable="RESPONSE_Content_Security_Policy" pattern=".*" /><action type="Rewrite" value="default-src 'self'" replace="false" /></rule>
				<rule name="default Referrer"><match serverVariable="RESPONSE_Referrer_Policy" pattern=".*" /><action type="Rewrite" value="no-referrer" replace="false" /></rule>`,
			header: http.Header{"Content-Security-Policy": {"default-src *"}},
			want:   http.Header{"Content-Security-Policy": {"default-src *"}, "Referrer-Policy": {"no-referrer"}},
		},
		{
			name:   "negate and None",
			rules:  `<rule name="keep" stopProcessing="true"><match serverVariable="RESPONSE_Cache_Control" pattern="no-store" negate="true" /><action type="None" /></rule><rule name="drop"><match serverVariable="RESPONSE_Cache_Control" pattern=".*" /><action type="Rewrite" value="" /></rule>`,
			header: http.Header{"Cache-Control": {"public"}},
			want:   http.Header{"Cache-Control": {"public"}},
		},
	}
	for _, tt := range tests {
		o, err := compileOut(t, tt.rules)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		in := request("/cart")
		in.HTTPS = tt.https
		h := pipeline.ResponseHeader(tt.header)
		if err := o.Apply(in, max(tt.status, 200), h); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(tt.header) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.header, tt.want)
			continue
		}
		for k, vs := range tt.want {
			if got := tt.header[k]; strings.Join(got, "|") != strings.Join(vs, "|") {
				t.Errorf("%s: %s = %q, want %q (all: %v)", tt.name, k, got, vs, tt.header)
			}
		}
	}
}

func TestOutboundErrors(t *testing.T) {
	t.Parallel()
	for rules, want := range map[string]string{
		`<rule name="a" preCondition="IsHTML"><match serverVariable="RESPONSE_X" pattern=".*" /><action type="Rewrite" value="y" /></rule>`: `"IsHTML": no such preCondition`,
		`<rule name="a"><match serverVariable="RESPONSE_Content_Length" pattern=".*" /><action type="Rewrite" value="1" /></rule>`:          "Gatehouse frames the response itself",
		`<rule name="a"><match serverVariable="RESPONSE_X" pattern="(" /><action type="Rewrite" value="1" /></rule>`:                        `match attribute "pattern"`,
		`<rule name="a"><match serverVariable="RESPONSE_X" pattern=".*" /><action type="Rewrite" value="{NO_SUCH_VARIABLE}" /></rule>`:      "server variable not supported",
	} {
		_, err := compileOut(t, rules)
		var re *rewrite.Error
		if err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &re) || re.Line == 0 {
			t.Errorf("%s: err %v, want an *Error with a line and %q", rules, err, want)
		}
	}
}
