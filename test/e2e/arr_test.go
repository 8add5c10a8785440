package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startService runs the test app as a plain HTTP service on a port of
// 127.0.0.1 (a stand-in for a Node service beside the ASP.NET Core app)
// until the test ends, and returns its address and pid.
func startService(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(testappBin, "-addr", "127.0.0.1:0", "-no-token-check")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			go func() { // drain the rest until the service exits
				for sc.Scan() {
				}
			}()
			return addr, cmd.Process.Pid
		}
	}
	t.Fatalf("the service did not say where it listens: %v", sc.Err())
	return "", 0
}

// A URL Rewrite rule that rewrites to another server (IIS Application
// Request Routing) forwards to it through Gatehouse's own client, with
// X-Forwarded-For, X-Forwarded-Proto and X-Original-URL and without the
// app's pairing token, when the site config lists it in proxyUpstreams;
// the same web.config is refused, with its file and line, when it does not.
func TestIISRewriteToUpstream(t *testing.T) {
	t.Parallel()
	upstream, pid := startService(t)
	wc := strings.ReplaceAll(readFile(t, filepath.Join("testdata", "iis", "arr.web.config")), "UPSTREAM", upstream)
	appDir := t.TempDir()
	writeFile(t, filepath.Join(appDir, "web.config"), wc)
	dir := t.TempDir()
	site := func(extra string) string {
		f := filepath.Join(dir, "gatehouse"+strconv.Itoa(len(extra))+".yaml")
		writeFile(t, f, fmt.Sprintf(`%s
sites:
  - name: arr
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
    applications:
      - {path: /, dir: %s}
`, extra, appDir))
		return f
	}

	check := func(cfg string) ([]byte, error) {
		cmd := exec.Command(gatehouseBin, "check", cfg)
		cmd.Env = append(os.Environ(), iisEnv()...)
		return cmd.CombinedOutput()
	}
	// Not listed: the rule is refused, naming file and line.
	out, err := check(site(""))
	if err == nil || !strings.Contains(string(out), "web.config:16") || !strings.Contains(string(out), "proxyUpstreams") {
		t.Errorf("check without proxyUpstreams: err %v, output %s; want a refusal at web.config:16 naming proxyUpstreams", err, out)
	}

	cfg := site("proxyUpstreams: [\"" + upstream + "\"]")
	if out, err := check(cfg); err != nil {
		t.Fatalf("check with proxyUpstreams: %v\n%s", err, out)
	}
	t.Cleanup(func() { // runs after gatehouse stopped
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(appDir)) == 0 })
	})
	g := startEnv(t, "", iisEnv(), "serve", "--config", cfg)
	s := &iisSite{gh: g, addr: g.listenerAddr(t, "http")}

	resp, body := s.do("GET", "/api/pid", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != strconv.Itoa(pid) {
		t.Fatalf("GET /api/pid = %d %q, want 200 from the service (pid %d)", resp.StatusCode, body, pid)
	}
	resp, body = s.do("GET", "/api/headers?x=1", nil)
	var rep struct {
		RawHeaders    map[string][]string `json:"raw_headers"`
		RawRequestURI string              `json:"raw_request_uri"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/headers = %d %q: %v", resp.StatusCode, body, err)
	}
	if rep.RawRequestURI != "/headers?x=1" {
		t.Errorf("the service got %q, want /headers?x=1", rep.RawRequestURI)
	}
	get := func(name string) string { return strings.Join(rep.RawHeaders[name], ",") }
	if got := get("X-Original-Url"); got != "/api/headers?x=1" {
		t.Errorf("X-Original-URL = %q, want /api/headers?x=1", got)
	}
	if got := get("X-Forwarded-For"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("X-Forwarded-For = %q, want the client's 127.0.0.1:port", got)
	}
	if got := get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got)
	}
	for name := range rep.RawHeaders {
		if strings.HasPrefix(strings.ToUpper(name), "MS-ASPNETCORE") {
			t.Errorf("the service got %s: the app's module headers must not leave for another server", name)
		}
	}
	// Everything else is the app's.
	resp, body = s.do("GET", "/pid", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) == strconv.Itoa(pid) {
		t.Errorf("GET /pid = %d %q, want the app's own pid", resp.StatusCode, body)
	}
}
