package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBodyFaultsAreTheClients sends request bodies that go wrong on the
// client's side to the real binary, in front of a running app: one that
// stops arriving gets 408 after timeouts.body, one with bad chunked framing
// gets 400, both with the connection closed and logged at INFO, never as a
// 502 blaming the app; a client that leaves mid-body is logged as 499 at
// DEBUG, not higher.
func TestBodyFaultsAreTheClients(t *testing.T) {
	t.Parallel()
	app := writeApp(t, testappAttrs(""), "")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`shutdownTimeout: 10s
timeouts: {body: 300ms}
sites:
  - name: s
    bindings: [{scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: %s}]
`, app))
	g := start(t, app, "serve", "--config", cfgFile)
	g.mustGet("/pid") // the app runs: what follows is about the body alone
	addr := strings.TrimPrefix(g.base, "http://")

	// send writes raw to a new connection and returns the response, or nil
	// when the connection closed without one.
	send := func(raw string) *http.Response {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		// Only a bound on a hang; the answer is expected after 300ms.
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response to %q: %v", raw, err)
		}
		res.Body.Close()
		return res
	}
	// failed waits for the "request failed" record with status and
	// returns its level.
	failed := func(status string) string {
		t.Helper()
		var level string
		waitFor(t, 10*time.Second, "the request failed record with status "+status, func() bool {
			for _, r := range g.logs.records() {
				if r["msg"] == "request failed" && r["status"] == status {
					level, _ = r["level"].(string)
					return true
				}
			}
			return false
		})
		return level
	}

	for _, tc := range []struct {
		name, raw, status string
	}{
		{"stalled", "POST /discard HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", "408"},
		{"bad chunk", "POST /discard HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n", "400"},
	} {
		res := send(tc.raw)
		if got := fmt.Sprint(res.StatusCode); got != tc.status || !res.Close {
			t.Errorf("%s: status %s, close %v; want %s and the connection closed", tc.name, got, res.Close, tc.status)
		}
		if level := failed(tc.status); level != "INFO" {
			t.Errorf("%s: logged at %s, want INFO (the client's fault)", tc.name, level)
		}
	}

	// A client that leaves mid-body: the front door reads the two bytes,
	// then the end of the connection.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "POST /discard HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if level := failed("499"); level != "DEBUG" {
		t.Errorf("client gone: logged at %s, want DEBUG", level)
	}

	for _, r := range g.logs.records() {
		if s, _ := r["status"].(string); r["msg"] == "request failed" && strings.HasPrefix(s, "5") {
			t.Errorf("a body fault blamed the app: %v", r)
		}
	}
}
