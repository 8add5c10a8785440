package frontend_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const cleanPathConfig = `
shutdownTimeout: 2s
protocols: {h2c: true}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: root}, {path: /api, dir: api}]
`

// TestRoutingOnCleanPath sends paths with dot segments, raw over TCP so no
// client library cleans them first, and checks that the application that
// gets each request is the one its cleaned path belongs to and that the app
// receives that cleaned path.
func TestRoutingOnCleanPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root", "api")
	s := start(t, e.config(t, cleanPathConfig), newOpener())
	addr := addrOf(t, s, "http", h1)
	for _, tc := range []struct{ target, app, path string }{
		{"/x/../api/secret", "/api", "/api/secret"},
		{"/x/%2e%2e/api/secret", "/api", "/api/secret"},
		{"/x/%2E%2E/api/secret", "/api", "/api/secret"},
		{"/./api/x", "/api", "/api/x"},
		{"/%2e/api/x", "/api", "/api/x"},
		{"/api/../x", "/", "/x"},
		{"/api/%2e%2e", "/", "/"},
		{"/api/%2e%2e/", "/", "/"},
		{"/api/./../../../x", "/", "/x"},
		{"/%61pi/y", "/api", "/api/y"},
		{"/api/a%2Fb?q=1", "/api", "/api/a%2Fb"},
	} {
		res, body := rawGet(t, addr, tc.target)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d %q", tc.target, res.StatusCode, body)
			continue
		}
		got := decode(t, body)
		if got.App != tc.app || got.RawPath != tc.path {
			t.Errorf("%s: went to app %q as %q, want app %q as %q", tc.target, got.App, got.RawPath, tc.app, tc.path)
		}
	}

	// An encoded separator that an app decoding it reads as a dot segment,
	// or as a path of another application, is refused.
	for _, target := range []string{"/x/..%2Fapi/z", "/api%2Fz"} {
		if res, _ := rawGet(t, addr, target); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", target, res.StatusCode)
		}
	}

	// The same over HTTP/2: the :path pseudo-header is cleaned the same way.
	c := client(t, h2c, addr, e.pki, false)
	req, err := http.NewRequest(http.MethodGet, "http://localhost/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "/x/%2e%2e/api/h2" // sent verbatim
	res, body := do(t, c, req)
	if got := decode(t, body); res.StatusCode != 200 || got.App != "/api" || got.RawPath != "/api/h2" {
		t.Errorf("h2c /x/%%2e%%2e/api/h2: %d app %q path %q", res.StatusCode, got.App, got.RawPath)
	}
}

// rawGet sends "GET target HTTP/1.1" on a new connection and reads the
// response.
func rawGet(t *testing.T, addr, target string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", target, err)
	}
	return res, strings.TrimSpace(string(b))
}
