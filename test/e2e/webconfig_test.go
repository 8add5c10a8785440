package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// removeServerHeader in the security-header shape of published apps: the
// app's own Server field (Kestrel's) never reaches the client, on the
// app's answers and on Gatehouse's refusals; an app without it keeps its
// Server field.
func TestIISRemoveServerHeader(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "secheaders", "/plain", "plain")
	for _, target := range []string{"/headers", "/web.config", "/missing"} {
		resp, _ := s.do("GET", target, nil)
		if got := resp.Header.Values("Server"); len(got) != 0 {
			t.Errorf("GET %s: %d with Server %q, want no Server field", target, resp.StatusCode, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: the custom headers are missing: %v", target, resp.Header)
		}
	}
	if resp, _ := s.do("GET", "/plain/headers", nil); resp.Header.Get("Server") != "Kestrel" {
		t.Errorf("an app without removeServerHeader: Server %q, want the app's Kestrel", resp.Header.Get("Server"))
	}
}

// IIS's server-level request filtering is every app's baseline: an app
// without a <requestFiltering> section is filtered with it, an app's
// <remove> edits it, and the site config can turn it off.
func TestIISServerFilteringDefaults(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "plain", "/edits", "filteredits")
	tests := []struct{ target, logPath, want string }{
		{"/web.config", "/web.config", "404.7"},
		{"/appsettings.Production.config", "/appsettings.Production.config", "404.7"},
		{"/src/Program.cs", "/src/Program.cs", "404.7"},
		{"/App_Data/orders.json", "/App_Data/orders.json", "404.8"},
		{"/shop.MDF", "/shop.MDF", "404.7"},
		{"/bin/Shop.dll", "/bin/Shop.dll", "404.8"},
		{"/BIN/Shop.dll", "/BIN/Shop.dll", "404.8"},
		{"/app_code/x", "/app_code/x", "404.8"},
		{"/binaries/x", "/binaries/x", "200"},
		{"/site.css", "/site.css", "200"},
		// The app's edits: bin and .cs removed, .config allowed again;
		// App_Data and .mdf are still the server's.
		{"/edits/bin/x", "/edits/bin/x", "200"},
		{"/edits/Program.cs", "/edits/Program.cs", "200"},
		{"/edits/app.config", "/edits/app.config", "200"},
		{"/edits/App_Data/x", "/edits/App_Data/x", "404.8"},
		{"/edits/db.mdf", "/edits/db.mdf", "404.7"},
	}
	for _, tt := range tests {
		resp, _ := s.do("GET", tt.target, nil)
		if fmt.Sprint(resp.StatusCode) != tt.want[:3] {
			t.Errorf("GET %s = %d, want %s", tt.target, resp.StatusCode, tt.want)
			continue
		}
		if got := s.logged("GET", tt.logPath, ""); got != tt.want {
			t.Errorf("GET %s: access log has %s, want %s", tt.target, got, tt.want)
		}
	}

	off := startIISSite(t, "requestFiltering: {disableServerDefaults: true}", "/", "plain")
	for _, target := range []string{"/web.config", "/bin/Shop.dll"} {
		if resp, _ := off.do("GET", target, nil); resp.StatusCode != 200 {
			t.Errorf("server defaults off: GET %s = %d, want the app's 200", target, resp.StatusCode)
		}
	}
}

// gatehouse check lists the effective hidden segments and extensions: the
// server's as the web.config edits them.
func TestIISCheckListsFilteringDefaults(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(gatehouseBin, "check", iisApp(t, "filteredits"))
	cmd.Env = append(os.Environ(), iisEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"request filtering (IIS server defaults with the web.config's edits):",
		"hidden segments (404.8): web.config App_code App_GlobalResources App_LocalResources App_WebReferences App_Data App_Browsers\n",
		"denied file extensions (404.7): .asax .ascx .master .skin .browser .sitemap .csproj .vb",
		" .vsdisco .rules\n",
		"allowed file extensions: .config\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// The web.config of a standalone Blazor WebAssembly publish: its rules
// rewrite to "wwwroot\{R:0}" and fall back to "wwwroot\", which IIS reads
// with '/'. Files are found under wwwroot, client-side routes get the
// index page, and check says how the backslashes are read.
func TestIISBlazorWebAssembly(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "blazorwasm")
	index, err := os.ReadFile("testdata/iis/blazorwasm/wwwroot/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ target, want string }{
		{"/", string(index)},
		{"/counter", string(index)},
		{"/fetchdata/42", string(index)},
		{"/_framework/blazor.webassembly.js", "/* stand-in for the Blazor WebAssembly loader */\n"},
		{"/css/app.css", "h1 { color: #512bd4; }\n"},
	} {
		resp, body := s.do("GET", tc.target, nil)
		if resp.StatusCode != 200 || body != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.target, resp.StatusCode, body, tc.want)
		}
	}

	cmd := exec.Command(gatehouseBin, "check", iisApp(t, "blazorwasm"))
	cmd.Env = append(os.Environ(), iisEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		`web.config:38: rule "Serve subdir": url "wwwroot\\{R:0}": '\' is read as '/', as IIS reads it`,
		`web.config:42: rule "SPA fallback routing": url "wwwroot\\": '\' is read as '/', as IIS reads it`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
