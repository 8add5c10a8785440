package app

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// guardedConfig has a <location> that only signed-in users may enter, a
// fileExtensions rule that denies .config, and rewrite rules that map one
// URL onto another.
const guardedConfig = `<configuration>
  <system.webServer>
    <aspNetCore processPath="app" />
    <security>
      <requestFiltering allowDoubleEscaping="true">
        <fileExtensions><add fileExtension=".config" allowed="false" /></fileExtensions>
      </requestFiltering>
    </security>
    <rewrite><rules>
      <rule name="old"><match url="^old/(.*)" /><action type="Rewrite" url="new/{R:1}" /></rule>
      <rule name="aspx"><match url="^(.*)\.aspx$" /><action type="Rewrite" url="{R:1}" /></rule>
    </rules></rewrite>
  </system.webServer>
  <location path="admin">
    <system.webServer><security><authorization>
      <add accessType="Deny" users="?" />
    </authorization></security></system.webServer>
  </location>
</configuration>`

// TestRewrittenURLJudgedAgain checks that the stages after URL Rewrite
// judge the URL the app will get: request filtering runs again over a
// rewritten URL, and authorization sees the rewritten path cleaned.
func TestRewrittenURLJudgedAgain(t *testing.T) {
	t.Parallel()
	cfg, err := webconfig.Decode(strings.NewReader(guardedConfig), "web.config", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &App{log: log, opts: Options{Path: "/"}, auth: auth.NewProvider(auth.Settings{}, log)}
	c, err := a.buildChain(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target, code, path string
	}{
		{"/web.config.aspx", "404.7", ""},
		{"/old/%252e%252e/admin/secret.txt", "401.2", ""},
		{"/admin/secret.txt", "401.2", ""},
		{"/old/x.txt", "", "/new/x.txt"},
		{"/page.aspx", "", "/page"},
	} {
		r := &pipeline.Request{Method: "GET", Path: pipeline.CleanPath(tc.target), Host: "t",
			Header: pipeline.HTTPHeader(http.Header{}), AppPath: "/"}
		res := c.Serve(r)
		switch {
		case tc.code == "" && res != nil:
			t.Errorf("%s: refused %s (%s)", tc.target, res.Code(), res.Reason)
		case tc.code == "" && r.Path != tc.path:
			t.Errorf("%s: app would get %q, want %q", tc.target, r.Path, tc.path)
		case tc.code != "" && res == nil:
			t.Errorf("%s: passed as %q, want %s", tc.target, r.Path, tc.code)
		case tc.code != "" && res.Code() != tc.code:
			t.Errorf("%s: refused %s (%s), want %s", tc.target, res.Code(), res.Reason, tc.code)
		}
	}
}
