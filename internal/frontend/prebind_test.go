package frontend_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// prebindConfig is a one-app config whose http binding has a port of its
// own, free when the test started.
func prebindConfig(t *testing.T) (*siteconfig.Config, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	e := newEnv(t, "app")
	return e.config(t, fmt.Sprintf(`
sites:
  - name: s
    bindings: [{scheme: http, address: 127.0.0.1, port: %s}]
    applications: [{path: /, dir: app}]
`, port)), addr
}

// dialListener connects to addr; a connection to itself (the kernel may
// pick addr's port as the client's when nothing listens there) counts as
// refused.
func dialListener(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err == nil && c.LocalAddr().String() == c.RemoteAddr().String() {
		c.Close()
		return nil, fmt.Errorf("connect %s: nothing listens (the connection went to itself)", addr)
	}
	return c, err
}

// TestPrebindAcceptsBeforeNew: the port accepts a connection before the
// Server exists, and the request sent on it is answered once it runs.
func TestPrebindAcceptsBeforeNew(t *testing.T) {
	t.Parallel()
	cfg, addr := prebindConfig(t)
	pre := frontend.Prebind(cfg)
	defer pre.Close()
	c, err := dialListener(addr)
	if err != nil {
		t.Fatalf("connect before New: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	srv, err := frontend.New(cfg, newOpener().open, slog.New(slog.NewTextHandler(io.Discard, nil)), frontend.WithPrebound(pre))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"Path":"/early"`) {
		t.Errorf("answer = %s %s", res.Status, body)
	}
}

// TestPrebindClose: Close closes the sockets no Server took, so the port
// refuses again (as after a configuration New rejected).
func TestPrebindClose(t *testing.T) {
	t.Parallel()
	cfg, addr := prebindConfig(t)
	pre := frontend.Prebind(cfg)
	c, err := dialListener(addr)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	c.Close()
	pre.Close()
	if c, err := dialListener(addr); err == nil {
		c.Close()
		t.Fatal("the port still accepts after Close")
	}
}
