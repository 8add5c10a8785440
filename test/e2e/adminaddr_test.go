package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminAddrNeedsToken runs serve --admin-addr: the token file appears
// beside the admin socket with mode 0640; a control call without it gets
// 401, one from a foreign Origin 403, and the health endpoints answer
// without it; gatehouse status and stop read the token file themselves.
func TestAdminAddrNeedsToken(t *testing.T) {
	t.Parallel()
	dir := writeApp(t, testappAttrs(""), "")
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	g := start(t, dir, "serve", "--pid-file", pidFile, "--admin-addr", "127.0.0.1:0", dir)
	addr, _ := g.logs.find("admin endpoint")["addr"].(string)
	tokenFile := strings.TrimSuffix(pidFile, ".pid") + ".token"
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("token file %s: %v %v, want mode 0640", tokenFile, fi, err)
	}
	token := strings.TrimSpace(readFile(t, tokenFile))
	call := func(method, path, origin, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call("POST", "/v1/stop?app=default/", "", ""); code != http.StatusUnauthorized {
		t.Errorf("stop without the token: %d, want 401", code)
	}
	if code := call("POST", "/v1/stop?app=default/", "https://evil.example", token); code != http.StatusForbidden {
		t.Errorf("stop from a foreign origin: %d, want 403", code)
	}
	g.mustGet("/")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := call("GET", p, "", ""); code != http.StatusOK {
			t.Errorf("GET %s without the token: %d, want 200", p, code)
		}
	}
	if code, out := ghctl(t, "status", "--admin-addr", addr, "--pid-file", pidFile); code != 0 || !strings.Contains(out, "default/") {
		t.Errorf("status over --admin-addr: exit %d\n%s", code, out)
	}
	if code, out := ghctl(t, "stop", "default/", "--admin-addr", addr, "--admin-token", tokenFile); code != 0 {
		t.Errorf("stop over --admin-addr: exit %d\n%s", code, out)
	}
	if code, _, _ := g.get("/"); code != http.StatusServiceUnavailable {
		t.Errorf("after stop over --admin-addr: %d, want 503", code)
	}
	if code := call("POST", "/v1/start?app=default/", "http://127.0.0.1", token); code != http.StatusOK {
		t.Errorf("start with the token from a loopback origin: %d, want 200", code)
	}
}
