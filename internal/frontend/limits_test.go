package frontend_test

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const limitsConfig = `
shutdownTimeout: 2s
protocols: {h2c: true, http3: true}
limits: {maxUrl: 64, maxQueryString: 32, maxAllowedContentLength: 100, maxRequestBytes: 2048}
timeouts: {header: 300ms, body: 300ms}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: app}]
    accessLog: {path: access.jsonl, format: json}
`

// TestLimits trips every request limit on every protocol and checks the
// status the client gets and the substatus in the access log.
func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, limitsConfig), o)
	type result struct{ status, sub int }
	var want []result
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			tests := []struct {
				name   string
				req    func() *http.Request
				status int
				sub    int
			}{
				{"ok", func() *http.Request {
					return newReq(t, "POST", m.url("localhost", "/x?a=b"), strings.NewReader("small"))
				}, 200, 0},
				{"maxUrl", func() *http.Request { return newReq(t, "GET", m.url("localhost", "/"+strings.Repeat("u", 64)), nil) }, 404, 14},
				{"maxQueryString", func() *http.Request { return newReq(t, "GET", m.url("localhost", "/?"+strings.Repeat("q", 33)), nil) }, 404, 15},
				{"maxAllowedContentLength", func() *http.Request {
					return newReq(t, "POST", m.url("localhost", "/"), strings.NewReader(strings.Repeat("b", 101)))
				}, 413, 0},
				{"maxRequestBytes", func() *http.Request {
					r := newReq(t, "GET", m.url("localhost", "/"), nil)
					r.Header.Set("X-Big", strings.Repeat("h", 2100))
					return r
				}, 431, 0},
			}
			for _, tt := range tests {
				res, err := c.Do(tt.req())
				if err != nil {
					t.Errorf("%s: %v", tt.name, err)
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tt.status {
					t.Errorf("%s: status %d, want %d (%s)", tt.name, res.StatusCode, tt.status, body)
				}
				if tt.sub != 0 && !strings.Contains(string(body), "404."+strconv.Itoa(tt.sub)) {
					t.Errorf("%s: page %q does not name the substatus", tt.name, body)
				}
				want = append(want, result{tt.status, tt.sub})
			}
		})
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(e.dir, "access.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []result
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var j struct{ Status, Substatus int }
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		got = append(got, result{j.Status, j.Substatus})
	}
	if len(got) != len(want) {
		t.Fatalf("log has %d entries, want %d: %v", len(got), len(want), got)
	}
	// A request is logged once its answer was sent, so the client may have
	// sent the next one (on a new connection, after a refusal closed the
	// last) before it is logged: the lines are compared in one order.
	byResult := func(a, b result) int { return cmp.Or(cmp.Compare(a.status, b.status), cmp.Compare(a.sub, b.sub)) }
	slices.SortFunc(got, byResult)
	slices.SortFunc(want, byResult)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("log entry %d (sorted) = %v, want %v", i, got[i], want[i])
		}
	}
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChunkedBodyLimit: a body without Content-Length is cut at the limit;
// the app's read fails with *http.MaxBytesError.
func TestChunkedBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, limitsConfig), o)
	for _, m := range []mode{h1, h2} {
		c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
		body := io.MultiReader(strings.NewReader(strings.Repeat("b", 150)))
		res, _ := do(t, c, newReq(t, "POST", m.url("localhost", "/"), body))
		if res.StatusCode != 400 {
			t.Errorf("%s: status %d, want the app's 400", m, res.StatusCode)
		}
		var mbe *http.MaxBytesError
		if err, _ := o.get("s/").bodyErr.Load().(error); !errors.As(err, &mbe) {
			t.Errorf("%s: app read error %v, want *http.MaxBytesError", m, err)
		}
	}
}

// TestSlowClients: a client that stalls in the headers is disconnected
// after timeouts.header; one that stalls in the body makes the app's read
// fail after timeouts.body.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, limitsConfig), o)
	addr := s.Addrs()["http"].String()

	t.Run("header", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		// Generous: it bounds a wait on a loaded machine, not a speed.
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err = io.ReadAll(conn); err != nil {
			t.Fatalf("connection not closed by the header timeout: %v", err)
		}
	})
	t.Run("body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second)) // as above
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		res.Body.Close()
		var ne net.Error
		if err, _ := o.get("s/").bodyErr.Load().(error); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("app read error = %v, want a timeout", err)
		}
	})
}

// TestMaxConnections: at the limit, a connection that waits for a
// request (idle keep-alive) is closed to make room for a new one; when
// every connection is busy, the connection over the limit gets 503 and is
// closed; once a connection closes, new ones are served again.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
limits: {maxConnections: 1}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`), o)
	addr := s.Addrs()["http"].String()
	first := client(t, h1, addr, e.pki, false)
	if res, _ := get(t, first, "http://localhost/"); res.StatusCode != 200 {
		t.Fatalf("first connection: %d", res.StatusCode)
	}
	// first keeps its idle connection open; a second client needs another,
	// and gets it: first's idle connection is shed. The first turns idle
	// when its loop is back waiting for a request, a moment after its
	// client has the answer; until then a second connection is over the
	// limit (503 and close), so it tries again.
	second := client(t, h1, addr, e.pki, false)
	waitFor(t, "a second connection while the first is idle", func() bool {
		res, err := second.Get("http://localhost/")
		if err != nil {
			return false
		}
		// Read to the end, or the transport closes the connection
		// instead of reusing it for the request below.
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == 200
	})
	// Now second's connection is busy with a request: a third is over.
	busy := make(chan int, 1)
	go func() {
		res, err := second.Get("http://localhost/block")
		if err != nil {
			busy <- -1
			return
		}
		res.Body.Close()
		busy <- res.StatusCode
	}()
	waitFor(t, "the blocked request to arrive", func() bool {
		select {
		case code := <-busy:
			t.Fatalf("the request meant to be held ended first: status %d (-1: error), app hits %d", code, o.get("s/").hits.Load())
		default:
		}
		return o.get("s/").hits.Load() >= 3
	})
	if n := o.get("s/").hits.Load(); n != 3 {
		t.Fatalf("app hits %d, want 3 (first, second, the held request)", n)
	}
	third := client(t, h1, addr, e.pki, false)
	res, _ := get(t, third, "http://localhost/")
	if res.StatusCode != 503 || !res.Close {
		t.Fatalf("third connection while the other is busy: status %d close %v, want 503 and close", res.StatusCode, res.Close)
	}
	close(o.get("s/").block)
	if code := <-busy; code != 200 {
		t.Fatalf("blocked request: %d", code)
	}
	second.Transport.(*http.Transport).CloseIdleConnections()
	waitFor(t, "a free connection slot", func() bool {
		res, err := third.Get("http://localhost/")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}
