package webconfig

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// decodeInner decodes a web.config whose <system.webServer> holds an
// <aspNetCore> and inner, with inner starting on line 3.
func decodeInner(inner string) (*config.App, error) {
	doc := "<configuration>\n<system.webServer><aspNetCore processPath=\"a\"/>\n" + inner + "\n</system.webServer></configuration>"
	return decode(strings.NewReader(doc), "web.config", "/srv/app", testEnv)
}

func TestSectionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, inner, want string
	}{
		{"bad content length", `<security><requestFiltering><requestLimits maxAllowedContentLength="lots"/></requestFiltering></security>`,
			`web.config:3: requestLimits attribute "maxAllowedContentLength": "lots" is not a whole number (0–4294967295)`},
		{"content length over uint", `<security><requestFiltering><requestLimits maxUrl="4294967296"/></requestFiltering></security>`,
			`requestLimits attribute "maxUrl": "4294967296" is not a whole number`},
		{"unknown requestFiltering attribute", `<security><requestFiltering allowDoubleEscaping="false" maxUrl="5"/></security>`,
			`web.config:3: requestFiltering attribute "maxUrl": unknown attribute`},
		{"unknown requestFiltering child", "<security><requestFiltering>\n<requestLimit maxUrl=\"5\"/></requestFiltering></security>",
			`web.config:4: <requestLimit>: unknown element in <requestFiltering>`},
		{"bad bool", `<security><requestFiltering allowHighBitCharacters="no"/></security>`,
			`requestFiltering attribute "allowHighBitCharacters": "no" is not true or false`},
		{"extension without dot", `<security><requestFiltering><fileExtensions><add fileExtension="exe" allowed="false"/></fileExtensions></requestFiltering></security>`,
			`web.config:3: add attribute "fileExtension": "exe" must start with a dot`},
		{"duplicate extension", "<security><requestFiltering><fileExtensions><add fileExtension=\".exe\" allowed=\"false\"/>\n<add fileExtension=\".EXE\"/></fileExtensions></requestFiltering></security>",
			`web.config:4: add attribute "fileExtension": ".EXE" is already in <fileExtensions> (line 3)`},
		{"verb missing", `<security><requestFiltering><verbs><add allowed="false"/></verbs></requestFiltering></security>`,
			`add attribute "verb": required attribute is missing (in <verbs>)`},
		{"header limit without size", `<security><requestFiltering><requestLimits><headerLimits><add header="Cookie"/></headerLimits></requestLimits></requestFiltering></security>`,
			`add attribute "sizeLimit": required attribute is missing (header Cookie)`},
		{"hidden segment with slash", `<security><requestFiltering><hiddenSegments><add segment="a/b"/></hiddenSegments></requestFiltering></security>`,
			`"a/b" is not one path segment`},
		{"bad ip", `<security><ipSecurity><add ipAddress="10.0.0.256" allowed="true"/></ipSecurity></security>`,
			`web.config:3: add attribute "ipAddress": "10.0.0.256" is not an IP address`},
		{"bad mask", `<security><ipSecurity><add ipAddress="10.0.0.0" subnetMask="255.0.255.0" allowed="true"/></ipSecurity></security>`,
			`add attribute "subnetMask": subnetMask "255.0.255.0" is not a mask for 10.0.0.0`},
		{"bad deny action", `<security><ipSecurity denyAction="Teapot"/></security>`,
			`ipSecurity attribute "denyAction": "Teapot" is not one of Unauthorized, Forbidden, NotFound, AbortRequest`},
		{"duplicate ip", "<security><ipSecurity><add ipAddress=\"10.0.0.1\"/>\n<add ipAddress=\"10.0.0.1\"/></ipSecurity></security>",
			`web.config:4: add attribute "ipAddress": "10.0.0.1/32" is already in <ipSecurity> (line 3)`},
		{"bad header name", `<httpProtocol><customHeaders><add name="X Bad" value="1"/></customHeaders></httpProtocol>`,
			`web.config:3: add attribute "name": "X Bad" is not a header name`},
		{"unknown httpProtocol child", `<httpProtocol><headers/></httpProtocol>`,
			`<headers>: unknown element in <httpProtocol>`},
		{"bad compression bool", `<urlCompression doDynamicCompression="maybe"/>`,
			`urlCompression attribute "doDynamicCompression": "maybe" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeInner(tt.inner)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestSectionDetails(t *testing.T) {
	t.Parallel()
	t.Run("clear drops earlier entries", func(t *testing.T) {
		t.Parallel()
		a, err := decodeInner(`<httpProtocol><customHeaders><add name="x-a" value="1"/><clear/><add name="X-B" value="2"/></customHeaders></httpProtocol>`)
		if err != nil {
			t.Fatal(err)
		}
		if want := []config.HeaderField{{Name: "X-B", Value: "2"}}; !reflect.DeepEqual(a.CustomHeaders.Headers, want) {
			t.Errorf("Headers = %+v, want %+v", a.CustomHeaders.Headers, want)
		}
	})
	t.Run("location merges sections", func(t *testing.T) {
		t.Parallel()
		a, err := decodeInner(`<security><requestFiltering><requestLimits maxUrl="100"/></requestFiltering></security></system.webServer>
<location path="."><system.webServer><security><requestFiltering><requestLimits maxQueryString="50"/></requestFiltering></security></system.webServer></location>
<location path="admin"><system.webServer><security><requestFiltering><requestLimits maxQueryString="7"/></requestFiltering></security></system.webServer></location><system.webServer>`)
		if err != nil {
			t.Fatal(err)
		}
		if l := a.RequestFiltering.Limits; l.MaxURL != 100 || l.MaxQueryString != 50 {
			t.Errorf("Limits = %+v, want maxUrl 100 and maxQueryString 50", l)
		}
	})
	t.Run("a second section in scope edits the first's collections", func(t *testing.T) {
		t.Parallel()
		a, err := decodeInner(`<httpProtocol><customHeaders><add name="X-A" value="1"/><add name="X-B" value="2"/></customHeaders></httpProtocol>
<security><requestFiltering><hiddenSegments><add segment="bin"/></hiddenSegments></requestFiltering>
<ipSecurity allowUnlisted="false"><add ipAddress="10.0.0.0" subnetMask="255.0.0.0" allowed="true"/></ipSecurity></security>
</system.webServer><location path="."><system.webServer>
<httpProtocol><customHeaders><remove name="x-a"/><add name="X-C" value="3"/></customHeaders></httpProtocol>
<security><requestFiltering><hiddenSegments><add segment="App_Data"/></hiddenSegments></requestFiltering>
<ipSecurity><remove ipAddress="10.0.0.0" subnetMask="8"/><add ipAddress="192.0.2.1" allowed="true"/></ipSecurity></security>
</system.webServer></location><system.webServer>`)
		if err != nil {
			t.Fatal(err)
		}
		if want := []config.HeaderField{{Name: "X-B", Value: "2"}, {Name: "X-C", Value: "3"}}; !reflect.DeepEqual(a.CustomHeaders.Headers, want) {
			t.Errorf("Headers = %+v, want %+v", a.CustomHeaders.Headers, want)
		}
		if want := []string{"bin", "App_Data"}; !reflect.DeepEqual(a.RequestFiltering.HiddenSegments, want) {
			t.Errorf("HiddenSegments = %q, want %q", a.RequestFiltering.HiddenSegments, want)
		}
		if want := []config.IPRule{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Allowed: true}}; !reflect.DeepEqual(a.IPSecurity.Rules, want) || a.IPSecurity.AllowUnlisted {
			t.Errorf("IPSecurity = %+v, want %+v with others denied", a.IPSecurity, want)
		}
		_, err = decodeInner(`<httpProtocol><customHeaders><add name="X-A" value="1"/></customHeaders></httpProtocol>
</system.webServer><location path="."><system.webServer>
<httpProtocol><customHeaders><add name="X-A" value="2"/></customHeaders></httpProtocol></system.webServer></location><system.webServer>`)
		if err == nil || !strings.Contains(err.Error(), `web.config:5: add attribute "name": "X-A" is already in <customHeaders> (an earlier section in scope)`) {
			t.Errorf("duplicate across sections: %v", err)
		}
	})
	t.Run("ipv6 prefix and domain names", func(t *testing.T) {
		t.Parallel()
		a, err := decodeInner(`<security><ipSecurity enableReverseDns="true"><add ipAddress="2001:db8::1" subnetMask="32" allowed="true"/><add domainName="example.com" allowed="false"/></ipSecurity></security>`)
		if err != nil {
			t.Fatal(err)
		}
		if want := []config.IPRule{{Prefix: netip.MustParsePrefix("2001:db8::/32"), Allowed: true}}; !reflect.DeepEqual(a.IPSecurity.Rules, want) {
			t.Errorf("Rules = %+v", a.IPSecurity.Rules)
		}
		if got := strings.Join(a.Unsupported, "\n"); !strings.Contains(got, `domainName="example.com"`) || !strings.Contains(got, "enableReverseDns") {
			t.Errorf("Unsupported = %s", got)
		}
	})
	t.Run("unknown sections are reported", func(t *testing.T) {
		t.Parallel()
		a, err := decodeInner("<fancyModule on=\"true\"/>\n<security><fancyCheck/></security>")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"web.config:3: <fancyModule>: not supported by Gatehouse", "web.config:4: <security/fancyCheck>: not supported by Gatehouse"}
		if !reflect.DeepEqual(a.Unsupported, want) {
			t.Errorf("Unsupported = %q, want %q", a.Unsupported, want)
		}
	})
}

func TestIPPrefix(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, mask, want string }{
		{"10.1.2.3", "", "10.1.2.3/32"},
		{"10.1.2.3", "255.255.0.0", "10.1.0.0/16"},
		{"10.1.2.3", "255.255.255.128", "10.1.2.0/25"},
		{"::ffff:10.0.0.1", "", "10.0.0.1/32"},
		{"2001:db8::", "48", "2001:db8::/48"},
		{"10.0.0.0", "0.0.0.0", "0.0.0.0/0"},
	} {
		got, err := ipPrefix(tt.addr, tt.mask)
		if err != nil || got.String() != tt.want {
			t.Errorf("ipPrefix(%q, %q) = %v, %v; want %s", tt.addr, tt.mask, got, err, tt.want)
		}
	}
	for _, bad := range [][2]string{{"10.0.0.1", "255.0.255.0"}, {"10.0.0.1", "33"}, {"10.0.0.1", "ffff::"}, {"host", ""}} {
		if _, err := ipPrefix(bad[0], bad[1]); err == nil {
			t.Errorf("ipPrefix(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestDynamicIPSecurity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		inner string
		want  *config.DynamicIPSecurity
		err   string
	}{
		{`<security><dynamicIpSecurity><denyByConcurrentRequests enabled="true" /><denyByRequestRate enabled="true" /></dynamicIpSecurity></security>`,
			&config.DynamicIPSecurity{DenyAction: "Forbidden", MaxConcurrentRequests: 5, MaxRequests: 20, RequestInterval: 200 * time.Millisecond}, ""},
		{`<security><dynamicIpSecurity denyAction="notfound" enableLoggingOnlyMode="true"><denyByRequestRate enabled="true" maxRequests="100" requestIntervalInMilliseconds="1000" /><denyByConcurrentRequests enabled="false" maxConcurrentRequests="9" /></dynamicIpSecurity></security>`,
			&config.DynamicIPSecurity{DenyAction: "NotFound", LoggingOnly: true, MaxRequests: 100, RequestInterval: time.Second}, ""},
		{`<security><dynamicIpSecurity><denyByRequestRate enabled="yes" /></dynamicIpSecurity></security>`, nil, `denyByRequestRate attribute "enabled": "yes" is not true or false`},
		{`<security><dynamicIpSecurity><denyByRate enabled="true" /></dynamicIpSecurity></security>`, nil, `<denyByRate>: unknown element in <dynamicIpSecurity>`},
	}
	for _, tt := range tests {
		app, err := decodeInner(tt.inner)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.inner, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.inner, err)
		}
		if !reflect.DeepEqual(app.DynamicIPSecurity, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.inner, app.DynamicIPSecurity, tt.want)
		}
	}
}

// A <location path="sub"> edits the app's request filtering and custom
// headers for that path, whether it comes before or after them.
func TestLocationSections(t *testing.T) {
	t.Parallel()
	app := `<security><requestFiltering><fileExtensions><add fileExtension=".bak" allowed="false" /></fileExtensions></requestFiltering></security>
<httpProtocol><customHeaders><add name="X-Frame-Options" value="DENY" /></customHeaders></httpProtocol>`
	loc := `<location path="Backups/Old"><system.webServer>
<security><requestFiltering><fileExtensions><remove fileExtension=".bak" /></fileExtensions><hiddenSegments><add segment="tmp" /></hiddenSegments></requestFiltering></security>
<httpProtocol><customHeaders><remove name="X-Frame-Options" /><add name="Cache-Control" value="no-store" /></customHeaders></httpProtocol>
</system.webServer></location>`
	for name, doc := range map[string]string{
		"after":  "<configuration>\n<system.webServer><aspNetCore processPath=\"a\"/>\n" + app + "\n</system.webServer>" + loc + "</configuration>",
		"before": "<configuration>" + loc + "\n<system.webServer><aspNetCore processPath=\"a\"/>\n" + app + "\n</system.webServer></configuration>",
	} {
		a, err := decode(strings.NewReader(doc), "web.config", "/srv/app", testEnv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(a.Locations) != 1 {
			t.Fatalf("%s: Locations = %+v", name, a.Locations)
		}
		l := a.Locations[0]
		if l.Path != "Backups/Old" || len(l.RequestFiltering.FileExtensions.Rules) != 0 || !reflect.DeepEqual(l.RequestFiltering.HiddenSegments, []string{"tmp"}) {
			t.Errorf("%s: location filtering %+v", name, l.RequestFiltering)
		}
		if want := []config.HeaderField{{Name: "Cache-Control", Value: "no-store"}}; !reflect.DeepEqual(l.CustomHeaders.Headers, want) {
			t.Errorf("%s: location headers %+v, want %+v", name, l.CustomHeaders.Headers, want)
		}
		if len(a.RequestFiltering.FileExtensions.Rules) != 1 || len(a.CustomHeaders.Headers) != 1 || len(a.RequestFiltering.HiddenSegments) != 0 {
			t.Errorf("%s: the location changed the app's sections: %+v %+v", name, a.RequestFiltering, a.CustomHeaders)
		}
		if !slices.ContainsFunc(a.Sections, func(s string) bool { return strings.HasPrefix(s, "location Backups/Old: requestFiltering (") }) {
			t.Errorf("%s: Sections = %q", name, a.Sections)
		}
	}
	// An error in a location names its line.
	doc := "<configuration>\n<system.webServer><aspNetCore processPath=\"a\"/></system.webServer>\n<location path=\"x\"><system.webServer><security><requestFiltering>\n<verbs><add /></verbs></requestFiltering></security></system.webServer></location></configuration>"
	if _, err := decode(strings.NewReader(doc), "web.config", "/srv/app", testEnv); err == nil || !strings.Contains(err.Error(), "web.config:4:") {
		t.Errorf("error in a location: %v, want one naming line 4", err)
	}
}
