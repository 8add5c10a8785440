package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rewriteWebConfig is an app's web.config as IIS publishing lays it out,
// with URL Rewrite rules in the shapes the IIS documentation uses:
// canonical host, a legacy URL map, a custom response, an abort, rewrites
// inside the app and into another virtual app, and an SPA fallback with
// negated IsFile/IsDirectory conditions.
const rewriteWebConfig = `<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <location path="." inheritInChildApplications="false">
    <system.webServer>
      <handlers>
        <add name="aspNetCore" path="*" verb="*" modules="AspNetCoreModuleV2" resourceType="Unspecified" />
      </handlers>
      <aspNetCore %s>
        <environmentVariables><environmentVariable name="GREETING" value="ROOT" /></environmentVariables>
      </aspNetCore>
      <rewrite>
        <rewriteMaps configSource="rewritemaps.config" />
        <rules>
          <rule name="Canonical host" stopProcessing="true">
            <match url="(.*)" />
            <conditions><add input="{HTTP_HOST}" pattern="^example\.test$" /></conditions>
            <action type="Redirect" url="http://www.example.test/{R:1}" redirectType="Permanent" />
          </rule>
          <rule name="Legacy URLs" stopProcessing="true">
            <match url=".*" />
            <conditions><add input="{StaticRedirects:{REQUEST_URI}}" pattern="(.+)" /></conditions>
            <action type="Redirect" url="{C:1}" appendQueryString="false" redirectType="Found" />
          </rule>
          <rule name="Block admin" stopProcessing="true">
            <match url="^admin(/|$)" />
            <action type="CustomResponse" statusCode="403" subStatusCode="2" statusReason="Forbidden" statusDescription="No admin here." />
          </rule>
          <rule name="Drop scanners" stopProcessing="true">
            <match url="^wp-login\.php$" />
            <action type="AbortRequest" />
          </rule>
          <rule name="Hostile pattern">
            <match url="^redos/(a+)+$" />
            <action type="None" />
          </rule>
          <rule name="Greeting" stopProcessing="true">
            <match url="^hello/(\w+)$" />
            <action type="Rewrite" url="env?name=GREETING&amp;who={R:1}" appendQueryString="false" />
          </rule>
          <rule name="Old API" stopProcessing="true">
            <match url="^legacy-api/(.*)" />
            <action type="Rewrite" url="/api/{R:1}" />
          </rule>
          <rule name="SPA fallback" stopProcessing="true">
            <match url=".*" />
            <conditions logicalGrouping="MatchAll">
              <add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" />
              <add input="{REQUEST_FILENAME}" matchType="IsDirectory" negate="true" />
              <add input="{REQUEST_URI}" pattern="^/(env|headers)" negate="true" />
            </conditions>
            <serverVariables>
              <set name="HTTP_X_SPA_ROUTE" value="{R:0}" />
            </serverVariables>
            <action type="Rewrite" url="/headers" />
          </rule>
        </rules>
        <outboundRules>
          <rule name="Hide server">
            <match serverVariable="RESPONSE_SERVER" pattern=".+" />
            <action type="Rewrite" value="" />
          </rule>
        </outboundRules>
      </rewrite>
    </system.webServer>
  </location>
</configuration>
`

// globalRulesConfig is the site config's globalRules file, in the shape of
// IIS's applicationHost.config.
const globalRulesConfig = `<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.webServer>
    <rewrite>
      <globalRules>
        <rule name="Retired host" stopProcessing="true">
          <match url="(.*)" />
          <conditions><add input="{HTTP_HOST}" pattern="^old\.example\.test$" /></conditions>
          <action type="Redirect" url="http://new.example.test/{R:1}" />
        </rule>
        <rule name="Legacy to the API app">
          <match url="legacy/(.*)" />
          <action type="Rewrite" url="/api/{R:1}" />
        </rule>
      </globalRules>
    </rewrite>
  </system.webServer>
</configuration>
`

// httpRedirectWebConfig sends a retired app's requests to the API app.
const httpRedirectWebConfig = `<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore %s />
    <httpRedirect enabled="true" destination="/api" httpResponseStatus="Permanent" />
  </system.webServer>
  <location path="stay">
    <system.webServer>
      <httpRedirect enabled="false" />
    </system.webServer>
  </location>
</configuration>
`

// URL Rewrite and HTTP Redirection from real web.configs, through the real
// binary: every action, a rewrite into another virtual app, the SPA
// fallback against real files, a hostile pattern, and what "gatehouse
// check" reports.
func TestURLRewrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, api, old := t.TempDir(), greetingApp(t, "API"), t.TempDir()
	writeFile(t, filepath.Join(root, "web.config"), fmt.Sprintf(rewriteWebConfig, testappAttrs("")))
	writeFile(t, filepath.Join(root, "static", "site.css"), "body{}")
	// The legacy URL map in a file of its own, as the IIS documentation
	// shows for large maps.
	writeFile(t, filepath.Join(root, "rewritemaps.config"), `<rewriteMaps>
  <rewriteMap name="StaticRedirects">
    <add key="/products.aspx?id=7" value="/products/7" />
  </rewriteMap>
</rewriteMaps>
`)
	writeFile(t, filepath.Join(old, "web.config"), fmt.Sprintf(httpRedirectWebConfig, testappAttrs("")))

	out, err := exec.Command(gatehouseBin, "check", root).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if want := "section: rewrite (8 rules, 1 maps, 1 outbound header rules)"; !strings.Contains(string(out), want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}

	globalRules := filepath.Join(dir, "rewrite.config")
	writeFile(t, globalRules, globalRulesConfig)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	accessLog := filepath.Join(dir, "access.log")
	writeFile(t, cfgFile, fmt.Sprintf(`globalRules: rewrite.config
sites:
  - name: main
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
    applications:
      - {path: /, dir: %s}
      - {path: /api, dir: %s}
      - {path: /old, dir: %s}
    accessLog: {path: %s}
`, root, api, old, accessLog))
	if out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "global rules: "+globalRules+" (2 rules, 0 maps)") {
		t.Errorf("check %s: %v\n%s", cfgFile, err, out)
	}
	t.Cleanup(func() {
		for _, d := range []string{root, api, old} {
			waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(d)) == 0 })
		}
	})
	g := start(t, "", "serve", "--config", cfgFile)
	if rec := g.logs.find("web.config element not carried out"); rec != nil {
		t.Errorf("an element was not carried out: %v", rec)
	}
	noFollow := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, target string) (int, string, http.Header, error) {
		t.Helper()
		req, err := http.NewRequest("GET", g.base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, err
	}

	tests := []struct {
		name, host, target string
		status             int
		location, body     string
	}{
		{"canonical host", "example.test", "/a/b?x=1", 301, "http://www.example.test/a/b?x=1", ""},
		{"legacy URL map", "", "/products.aspx?id=7", 302, "/products/7", ""},
		{"custom response", "", "/admin/users", 403, "", "No admin here."},
		{"rewrite inside the app, with a new query", "", "/hello/world", 200, "", "ROOT"},
		{"rewrite into another virtual app", "", "/legacy-api/env?name=GREETING", 200, "", "API"},
		{"a real file is not rewritten", "", "/static/site.css", 200, "", "Hello from testapp"},
		{"excluded from the fallback", "", "/env?name=GREETING", 200, "", "ROOT"},
		{"httpRedirect", "", "/old/env?name=GREETING", 301, "/api/env?name=GREETING", ""},
		{"a <location> kept out of httpRedirect", "", "/old/stay/x", 200, "", "Hello from testapp"},
		{"global rule: retired host", "old.example.test", "/a?b", 301, "http://new.example.test/a?b", ""},
		{"global rule: rewrite into another app", "", "/legacy/env?name=GREETING", 200, "", "API"},
		// Once: run again in the API app, the global rule would turn
		// /api/legacy/env into /api/env and answer "API".
		{"global rules run once", "", "/legacy/legacy/env?name=GREETING", 200, "", "Hello from testapp"},
		{"a hostile input against a hostile pattern", "", "/redos/" + strings.Repeat("a", 40) + "!", 500, "", ""},
	}
	for _, tt := range tests {
		code, body, h, err := get(tt.host, tt.target)
		if err != nil {
			t.Errorf("%s: GET %s: %v", tt.name, tt.target, err)
			continue
		}
		if code != tt.status || h.Get("Location") != tt.location || !strings.Contains(body, tt.body) {
			t.Errorf("%s: GET %s = %d Location %q body %q; want %d %q %q", tt.name, tt.target, code, h.Get("Location"), body, tt.status, tt.location, tt.body)
		}
		if h.Get("Server") != "" && code == 200 && tt.body == "ROOT" {
			t.Errorf("%s: the outbound rule \"Hide server\" left Server %q", tt.name, h.Get("Server"))
		}
	}

	// The SPA fallback: the app sees the rewritten path and, as behind IIS,
	// the URL the client asked for in X-Original-URL.
	code, body, _, err := get("", "/orders/42?tab=2")
	if err != nil || code != 200 {
		t.Fatalf("GET /orders/42 = %d, %v: %s", code, err, body)
	}
	var seen struct {
		Path    string              `json:"path"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if seen.Path != "/headers" || strings.Join(seen.Headers["X-Original-Url"], ",") != "/orders/42?tab=2" {
		t.Errorf("the app saw path %q, X-Original-URL %q; want /headers and /orders/42?tab=2", seen.Path, seen.Headers["X-Original-Url"])
	}
	if got := strings.Join(seen.Headers["X-Spa-Route"], ","); got != "orders/42" {
		t.Errorf("X-Spa-Route = %q, want orders/42 (the rule's <serverVariables>)", got)
	}

	// The access log has what the client asked for, as IIS logs it, and
	// the substatus of a custom response.
	waitFor(t, 5*time.Second, "the access log lines", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), " GET /orders/42 tab=2 ") && strings.Contains(string(b), " GET /admin/users - ")
	})
	b, _ := os.ReadFile(accessLog)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, " /admin/users ") && !strings.Contains(line, " 403 2 0 ") {
			t.Errorf("access log line %q lacks 403 2 0 (status, substatus, win32-status)", line)
		}
	}

	// AbortRequest closes the connection without an answer.
	if code, _, _, err := get("", "/wp-login.php"); err == nil {
		t.Errorf("GET /wp-login.php = %d, want the connection closed", code)
	}
	logged := false
	for _, rec := range g.logs.records() {
		logged = logged || rec["status"] == "500.52" && strings.Contains(fmt.Sprint(rec["reason"]), `rule "Hostile pattern"`)
	}
	if !logged {
		t.Error("the match timeout was not logged as 500.52 with the rule's name")
	}
}
