package webconfig

import (
	"strings"
	"testing"
)

// TestSecurityErrors checks that each bad <security> setting is refused
// with the file and the line it is on.
func TestSecurityErrors(t *testing.T) {
	t.Parallel()
	const head = "<configuration>\n<system.webServer>\n<aspNetCore processPath=\"a\"/>\n" // line 4 on
	const tail = "\n</system.webServer>\n</configuration>\n"
	tests := []struct{ name, inner, want string }{
		{"ntlm provider", "<security><authentication>\n<windowsAuthentication enabled=\"true\"><providers>\n<add value=\"NTLM\"/></providers></windowsAuthentication></authentication></security>",
			`w.config:6: add attribute "value": provider "NTLM" is not offered: Gatehouse does Negotiate with Kerberos only (NTLM needs a domain controller to check each response; see "NTLM is not offered" in docs/authentication.md)`},
		{"digest", "<security><authentication>\n<digestAuthentication enabled=\"true\"/></authentication></security>",
			"w.config:5: <digestAuthentication>: authentication scheme not offered"},
		{"bad bool", "<security><authentication>\n<anonymousAuthentication\n enabled=\"yes\"/></authentication></security>",
			`w.config:6: anonymousAuthentication attribute "enabled": "yes" is not true or false`},
		{"no accessType", "<security><authorization>\n<add users=\"*\"/></authorization></security>",
			`w.config:5: add attribute "accessType": required attribute is missing`},
		{"bad accessType", "<security><authorization>\n<add accessType=\"Maybe\" users=\"*\"/></authorization></security>",
			`w.config:5: add attribute "accessType": "Maybe" is not Allow or Deny`},
		{"no users or roles", "<security><authorization>\n<add accessType=\"Allow\" verbs=\"GET\"/></authorization></security>",
			`w.config:5: add attribute "users": set users or roles`},
		{"unknown rule attribute", "<security><authorization>\n<add accessType=\"Allow\" user=\"bob\"/></authorization></security>",
			`w.config:5: add attribute "user": unknown attribute`},
		{"quote in realm", "<security><authentication>\n<basicAuthentication realm='a\"b'/></authentication></security>",
			`w.config:5: basicAuthentication attribute "realm"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode(strings.NewReader(head+tt.inner+tail), "w.config", "/srv/a", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestLocationErrors checks the <location path> rules.
func TestLocationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, want string }{
		{"dot dot", "<configuration><system.webServer><aspNetCore processPath=\"a\"/></system.webServer>\n<location path=\"../x\"/></configuration>",
			`w.config:2: location attribute "path": "../x" must not leave the application`},
		{"wildcard", "<configuration><system.webServer><aspNetCore processPath=\"a\"/></system.webServer>\n<location path=\"a/*\"/></configuration>",
			`w.config:2: location attribute "path": "a/*" must be a literal path`},
		{"nested", "<configuration><system.webServer><aspNetCore processPath=\"a\"/></system.webServer>\n<location path=\"a\">\n<location path=\"b\"/></location></configuration>",
			`w.config:3: <location>: <location> inside <location> is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decode(strings.NewReader(tt.doc), "w.config", "/srv/a", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSubLocationReadsOnlySecurity checks that a sub-path location narrows
// security to its path and that <aspNetCore> there is not read.
func TestSubLocationReadsOnlySecurity(t *testing.T) {
	t.Parallel()
	doc := `<configuration><system.webServer><aspNetCore processPath="a"/></system.webServer>
<location path="/Admin/"><system.webServer><aspNetCore processPath="b"/>
<security><authentication><anonymousAuthentication enabled="false"/></authentication></security></system.webServer></location></configuration>`
	app, err := decode(strings.NewReader(doc), "w.config", "/srv/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if app.ProcessPath != "a" {
		t.Errorf("ProcessPath = %q, want the app level's", app.ProcessPath)
	}
	if len(app.Security) != 1 || app.Security[0].Path != "Admin" || app.Security[0].Line != 2 || *app.Security[0].Anonymous {
		t.Errorf("Security = %+v", app.Security)
	}
	if got := app.RootSchemes(app.SiteSchemes).HTTPAuth(); got != "anonymous;" {
		t.Errorf("root HTTPAuth = %q, want anonymous; (the location is narrower)", got)
	}
}
