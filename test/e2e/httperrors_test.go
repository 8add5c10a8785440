package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Custom error pages (<httpErrors>) from published web.configs: with
// existingResponse="Replace" the app's error answers and Gatehouse's own
// are replaced, by a file of the app's folder, by a page of the app run
// with the error's status (ExecuteURL), or by a redirect; with Auto only
// Gatehouse's own answers are, and the app's pass through. A <location
// path> has its own httpErrors and dynamicIpSecurity, merged onto the
// app's.
func TestIISHTTPErrors(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "errorpages", "/auto", "errorsauto")
	const page404 = "<!DOCTYPE html><title>Not here</title><p>Our custom 404 page.</p>\n"
	tests := []struct {
		name, method, target string
		logPath, logQuery    string
		wantLog              string
		status               int
		body, location       string // body: a substring of the body
	}{
		{"app's 200 untouched", "GET", "/", "/", "", "200", 200, "Hello from testapp", ""},
		{"app's 404 replaced by the file", "GET", "/childpid", "/childpid", "", "404", 404, page404, ""},
		{"app's empty 404 replaced by the file", "GET", "/env?name=GATEHOUSE_NO_SUCH_VAR", "/env", "name=GATEHOUSE_NO_SUCH_VAR", "404", 404, page404, ""},
		{"Gatehouse's 404.8 replaced by the file", "GET", "/bin/app.dll", "/bin/app.dll", "", "404.8", 404, page404, ""},
		{"404.7 runs the app's page with the error's status", "GET", "/site.csproj", "/site.csproj", "", "404.7", 404, "Hello from testapp", ""},
		{"404.6 redirects", "TRACE", "/", "/", "", "302", 302, "", "https://help.example.com/verbs"},
		{"location PassThrough: Gatehouse's 404.7 as it is", "GET", "/api/site.csproj", "/api/site.csproj", "", "404.7", 404, "HTTP Error 404.7", ""},
		{"location's request rate: second request", "GET", "/api/b", "/api/b", "", "200", 200, "Hello from testapp", ""},
		{"location's request rate: third request denied", "GET", "/api/c", "/api/c", "", "403.502", 403, "HTTP Error 403.502", ""},
		{"the app's own paths are not limited", "GET", "/d", "/d", "", "200", 200, "Hello from testapp", ""},
		{"Auto: the app's 404 passes through", "GET", "/auto/childpid", "/auto/childpid", "", "404", 404, "no child", ""},
		{"Auto: Gatehouse's 404.7 replaced", "GET", "/auto/web.config", "/auto/web.config", "", "404.7", 404, "Auto mode 404 page", ""},
	}
	for _, tt := range tests {
		resp, body := s.do(tt.method, tt.target, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %s %s = %d, want %d (body %q)", tt.name, tt.method, tt.target, resp.StatusCode, tt.status, body)
			continue
		}
		if tt.body == page404 && body != page404 {
			t.Errorf("%s: body %q, want the custom page %q", tt.name, body, page404)
		} else if !strings.Contains(body, tt.body) {
			t.Errorf("%s: body %q does not hold %q", tt.name, body, tt.body)
		}
		if tt.body == page404 && resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q, want the file's (text/html; charset=utf-8)", tt.name, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Location"); got != tt.location {
			t.Errorf("%s: Location %q, want %q", tt.name, got, tt.location)
		}
		if got := s.logged(tt.method, tt.logPath, tt.logQuery); got != tt.wantLog {
			t.Errorf("%s: access log has %s, want %s", tt.name, got, tt.wantLog)
		}
	}

	// HTTP/2 (h2c) goes through the same funnel: the same pages.
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	h2 := &http.Client{Timeout: 30 * time.Second, Transport: h2c}
	for target, want := range map[string]string{"/childpid": page404, "/bin/app.dll": page404, "/site.csproj": "Hello from testapp"} {
		resp, err := h2.Get("http://" + s.addr + target)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 404 || !strings.Contains(string(b), want) {
			t.Errorf("HTTP/2 GET %s = %s %d %q, want HTTP/2 404 with %q", target, resp.Proto, resp.StatusCode, b, want)
		}
	}
}
