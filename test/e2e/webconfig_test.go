package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// rawGet sends one HTTP/1.1 request for target, with the header lines
// extra, over a new connection and returns the response head as sent
// (status line and fields, CRLFs kept).
func rawGet(t *testing.T, addr, target string, extra ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	lines := ""
	for _, l := range extra {
		lines += l + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n", target, addr, lines); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	return head + "\r\n"
}

// Header names reach an HTTP/1.1 client as the app and the web.config
// wrote them, as IIS and nginx send them: X-XSS-Protection and ETag, not
// X-Xss-Protection and Etag.
func TestIISHeaderNameCase(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "secheaders")
	head := rawGet(t, s.addr, "/set-headers?h=X-UA-Compatible:IE%3Dedge&h=ETag:%22v1%22")
	for _, want := range []string{
		"\r\nX-XSS-Protection: 1; mode=block\r\n", // customHeaders
		"\r\nX-UA-Compatible: IE=edge\r\n",        // the app's
		"\r\nETag: \"v1\"\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("response head lacks %q:\n%s", want, head)
		}
	}
}

// A CustomResponse's statusReason is the reason phrase of the HTTP/1.1
// status line, as IIS sends it (IIS Manager's request-blocking rule).
func TestIISCustomResponseStatusReason(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "secheaders")
	head := rawGet(t, s.addr, "/", "User-Agent: sqlmap/1.7")
	if want := "HTTP/1.1 403 Forbidden: Access is denied.\r\n"; !strings.HasPrefix(head, want) {
		t.Errorf("status line: got %q, want %q", head[:strings.Index(head, "\r\n")+2], want)
	}
	if head := rawGet(t, s.addr, "/missing.config"); !strings.HasPrefix(head, "HTTP/1.1 404 Not Found\r\n") {
		t.Errorf("a refusal's status line: %q, want the standard reason", head[:strings.Index(head, "\r\n")+2])
	}
}

// gatehouse check on the smaller differences seen in published files: a
// Visual Studio web.config before publishing, Windows Authentication with
// no keytab (which serve refuses), a Windows absolute path in arguments.
func TestCheckPublishedFileMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, aspNetCore, extra string
		fails                   bool
		want                    string
	}{
		{"launcher placeholders", `processPath="%LAUNCHER_PATH%" arguments="%LAUNCHER_ARGS%"`, "", true,
			`processPath "%LAUNCHER_PATH%": %LAUNCHER_PATH% is a development placeholder of Visual Studio that "dotnet publish" replaces`},
		{"launcher args", `processPath="%TESTAPP%" arguments="%LAUNCHER_ARGS%"`, "", true,
			`arguments "%LAUNCHER_ARGS%": %LAUNCHER_ARGS% is a development placeholder`},
		{"windows auth without keytab", `processPath="%TESTAPP%"`,
			`<security><authentication><anonymousAuthentication enabled="false" /><windowsAuthentication enabled="true" /></authentication></security>`, true,
			"windowsAuthentication: keytab /nonexistent/krb5.keytab"},
		{"windows path in arguments", `processPath="%TESTAPP%" arguments="D:\home\site\wwwroot\Shop.dll --urls x"`, "", false,
			`arguments: "D:\home\site\wwwroot\Shop.dll" is a Windows absolute path, which does not exist here; write it relative to the app folder (.\Shop.dll)`},
	} {
		dir := t.TempDir()
		writeFile(t, dir+"/web.config", `<configuration><system.webServer><aspNetCore `+tc.aspNetCore+` />`+tc.extra+`</system.webServer></configuration>`)
		cmd := exec.Command(gatehouseBin, "check", dir)
		cmd.Env = append(os.Environ(), append(iisEnv(), "KRB5_KTNAME=/nonexistent/krb5.keytab")...)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: check (err %v):\n%s\nwant it to fail: %v, with %q", tc.name, err, out, tc.fails, tc.want)
		}
		if tc.fails && strings.Contains(string(out), ": OK") {
			t.Errorf("%s: check says OK and fails:\n%s", tc.name, out)
		}
	}
}

// Outbound rules on response headers, in the shapes published apps carry;
// a rule on the HTML body is named by check as not applied.
func TestIISOutboundRules(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "outbound")
	resp, _ := s.do("GET", "/set-headers?h=X-Powered-By:ASP.NET&h=X-Kept:1", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Server") != "" || resp.Header.Get("X-Powered-By") != "" || resp.Header.Get("X-Kept") != "1" {
		t.Errorf("Server and X-Powered-By must be gone, X-Kept kept: %d %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS added over http")
	}
	resp, _ = s.do("GET", "/redirect", nil)
	if got, want := resp.Header.Get("Location"), "/welcome/?from=%2Fredirect"; resp.StatusCode != 302 || got != want {
		t.Errorf("redirect: %d Location %q, want 302 %q", resp.StatusCode, got, want)
	}
	head := rawGet(t, s.addr, "/headers")
	if strings.Contains(head, "\r\nServer:") {
		t.Errorf("a Server field on the wire:\n%s", head)
	}

	cmd := exec.Command(gatehouseBin, "check", iisApp(t, "outbound"))
	cmd.Env = append(os.Environ(), iisEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"section: rewrite (0 rules, 0 maps, 4 outbound header rules, 1 outbound body rules)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// getFrom sends GET target from the loopback address from (127.0.0.0/8)
// on a new connection; ctx ends it. It returns the status, 0 on an error.
// It may run off the test's goroutine.
func getFrom(ctx context.Context, addr, from, target string) int {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+target, nil)
	if err != nil {
		return 0
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// dynamicIpSecurity counts per client address: over the rate 403.502,
// over the requests in progress 403.501, other clients unaffected, and a
// flood from many addresses served within each one's limits.
func TestIISDynamicIPSecurity(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "dynamicip")
	ctx := ctxT(t)
	for i := 1; i <= 6; i++ {
		want := 200
		if i == 6 {
			want = 403
		}
		if got := getFrom(ctx, s.addr, "127.0.0.2", fmt.Sprintf("/headers?n=%d", i)); got != want {
			t.Errorf("request %d from 127.0.0.2: %d, want %d", i, got, want)
		}
	}
	if got := s.logged("GET", "/headers", "n=6"); got != "403.502" {
		t.Errorf("the sixth request logged %s, want 403.502", got)
	}
	if got := getFrom(ctx, s.addr, "127.0.0.3", "/headers"); got != 200 {
		t.Errorf("another client: %d, want 200", got)
	}

	// Two requests in progress from 127.0.0.4, then a third.
	slow, cancel := context.WithCancel(ctx)
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- getFrom(slow, s.addr, "127.0.0.4", "/sleep?d=1h") }()
	}
	waitFor(t, 10*time.Second, "two requests sleeping in the app", func() bool { return s.logs.count("sleeping 1h") == 2 })
	if got := getFrom(ctx, s.addr, "127.0.0.4", "/headers?third"); got != 403 {
		t.Errorf("a third request in progress: %d, want 403", got)
	}
	if got := s.logged("GET", "/headers", "third"); got != "403.501" {
		t.Errorf("the third request logged %s, want 403.501", got)
	}
	cancel()
	<-done
	<-done
	waitFor(t, 10*time.Second, "127.0.0.4 served again once its requests ended", func() bool {
		return getFrom(ctx, s.addr, "127.0.0.4", "/headers") == 200
	})

	// A flood from 300 addresses, 3 requests each: all within the limits.
	denied := 0
	for i := range 300 {
		from := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
		for range 3 {
			if getFrom(ctx, s.addr, from, "/") != 200 {
				denied++
			}
		}
	}
	if denied != 0 {
		t.Errorf("%d requests of the flood denied, want none (each address is under its limits)", denied)
	}
}

// <location path="sub"> for request filtering and custom headers: each
// edits the app's sections for its path, wherever it stands in the file.
func TestIISLocationSections(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "compression: {dynamic: true, minSize: 10}", "/", "locations")
	for _, tc := range []struct {
		target, want     string
		frame, cache, ct string
	}{
		{"/headers", "200", "SAMEORIGIN", "", "nosniff"},
		{"/api/headers", "200", "", "no-store", "nosniff"},
		{"/API/orders", "200", "", "no-store", "nosniff"},
		{"/db.bak", "404", "SAMEORIGIN", "no-store", "nosniff"}, // Gatehouse's page: no-store
		{"/downloads/db.bak", "200", "SAMEORIGIN", "", "nosniff"},
		{"/downloads/bin/tool.zip", "200", "SAMEORIGIN", "", "nosniff"},
		{"/bin/tool.zip", "404", "SAMEORIGIN", "no-store", "nosniff"},
		{"/downloads/web.config", "404", "SAMEORIGIN", "no-store", "nosniff"},
		{"/admin/users", "403", "SAMEORIGIN", "no-store", "nosniff"},
		{"/administration", "200", "SAMEORIGIN", "", "nosniff"},
	} {
		resp, _ := s.do("GET", tc.target, nil)
		h := resp.Header
		if fmt.Sprint(resp.StatusCode) != tc.want || h.Get("X-Frame-Options") != tc.frame || h.Get("Cache-Control") != tc.cache || h.Get("X-Content-Type-Options") != tc.ct {
			t.Errorf("GET %s: %d X-Frame-Options %q Cache-Control %q X-Content-Type-Options %q; want %s %q %q %q",
				tc.target, resp.StatusCode, h.Get("X-Frame-Options"), h.Get("Cache-Control"), h.Get("X-Content-Type-Options"), tc.want, tc.frame, tc.cache, tc.ct)
		}
	}
	if got := s.logged("GET", "/admin/users", ""); got != "403.6" {
		t.Errorf("/admin/users logged %s, want 403.6 (the location's ipSecurity)", got)
	}
	for target, want := range map[string]string{"/hello": "gzip", "/api/hello": ""} {
		if resp, _ := s.do("GET", target, nil, "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != want {
			t.Errorf("GET %s: Content-Encoding %q, want %q", target, resp.Header.Get("Content-Encoding"), want)
		}
	}
}
