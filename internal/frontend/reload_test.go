package frontend_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

const reloadBefore = `
shutdownTimeout: 2s
sites:
  - name: a
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0, host: a.test}]
    applications:
      - {path: /, dir: a-root}
      - {path: /api, dir: a-api}
  - name: b
    bindings: [{name: b-http, scheme: http, address: 127.0.0.3, port: 0}]
    applications: [{path: /, dir: b-root}]
`

const reloadAfter = `
shutdownTimeout: 2s
timeouts: {header: 5s}
sites:
  - name: a
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0, host: a.test}]
    applications:
      - {path: /, dir: a-root}
      - {path: /v2, dir: a-api}
  - name: c
    bindings: [{name: c-http, scheme: http, address: 127.0.0.2, port: 0}]
    applications: [{path: /, dir: c-root}]
`

// TestReload swaps a config while a request is in flight: unchanged apps
// keep their instance, removed ones are closed, a dropped listener stops
// accepting, a new one serves, and the in-flight request completes.
func TestReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "a-root", "a-api", "b-root", "c-root")
	o := newOpener()
	s := start(t, e.config(t, reloadBefore), o)
	addr := s.Addrs()["http"].String()
	bAddr := s.Addrs()["b-http"].String()
	c := client(t, h1, addr, e.pki, false)
	if res, _ := get(t, c, "http://a.test/"); res.StatusCode != 200 {
		t.Fatal(res.Status)
	}

	inflight := make(chan int, 1)
	go func() {
		res, err := client(t, h1, addr, e.pki, false).Get("http://a.test/api/block")
		if err != nil {
			inflight <- -1
			return
		}
		res.Body.Close()
		inflight <- res.StatusCode
	}()
	waitFor(t, "the blocked request to arrive", func() bool { return o.get("a/api").hits.Load() == 1 })

	oldRoot := o.get("a/")
	if err := s.Reload(context.Background(), e.config(t, reloadAfter)); err != nil {
		t.Fatal(err)
	}
	if o.get("a/") != oldRoot || oldRoot.closed.Load() != 0 {
		t.Error("unchanged app / was reopened or closed")
	}
	if o.get("a/api").closed.Load() != 1 || o.get("b/").closed.Load() != 1 {
		t.Error("removed apps were not closed")
	}
	if s.Addrs()["http"].String() != addr {
		t.Errorf("unchanged listener moved from %s to %s", addr, s.Addrs()["http"])
	}
	for path, app := range map[string]string{"/api/x": "/", "/v2/x": "/v2"} {
		res, body := get(t, c, "http://a.test"+path)
		if res.StatusCode != 200 || decode(t, body).App != app {
			t.Errorf("%s: %d %s, want app %s", path, res.StatusCode, body, app)
		}
	}
	cc := client(t, h1, s.Addrs()["c-http"].String(), e.pki, false)
	if res, body := get(t, cc, "http://c.test/"); res.StatusCode != 200 || decode(t, body).Site != "c" {
		t.Errorf("new site: %d %s", res.StatusCode, body)
	}
	if conn, err := net.DialTimeout("tcp", bAddr, time.Second); err == nil {
		conn.Close()
		t.Error("dropped listener still accepts")
	}

	close(o.block)
	if got := <-inflight; got != 200 {
		t.Errorf("in-flight request across the reload: status %d", got)
	}
}

// TestReloadRejected: an invalid config, an app that fails to open, a
// certificate that cannot be read and a port in use are all refused and the
// old config keeps serving.
func TestReloadRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "a-root", "a-api", "b-root", "c-root")
	o := newOpener()
	s := start(t, e.config(t, reloadBefore), o)
	c := client(t, h1, s.Addrs()["http"].String(), e.pki, false)

	// The file itself is invalid: Load names the line and nothing is applied.
	bad := filepath.Join(e.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("sites:\n  - name: a\n    bindngs: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := siteconfig.Load(bad); err == nil || !strings.Contains(err.Error(), "bad.yaml:3:") {
		t.Errorf("Load error = %v, want one naming bad.yaml:3", err)
	}

	inUse, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.Close()
	port := inUse.Addr().(*net.TCPAddr).Port

	valid := e.config(t, reloadAfter)
	if err := os.Remove(filepath.Join(e.dir, "c-root", "web.config")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() *siteconfig.Config{
		"no web.config": func() *siteconfig.Config { return valid },
		"open fails": func() *siteconfig.Config {
			o.mu.Lock()
			o.fail = filepath.Join(e.dir, "b-root")
			o.mu.Unlock()
			cfg := e.config(t, strings.ReplaceAll(reloadBefore, "a-api}", "a-api}\n      - {path: /more, dir: b-root}"))
			return cfg
		},
		"port in use": func() *siteconfig.Config {
			return e.config(t, reloadBefore+"  - name: d\n    bindings: [{scheme: http, address: 127.0.0.1, port: "+strconv.Itoa(port)+"}]\n    applications: [{path: /, dir: a-root}]\n")
		},
	}
	for name, cfg := range cases {
		before := len(o.all)
		if err := s.Reload(context.Background(), cfg()); err == nil {
			t.Errorf("%s: Reload succeeded", name)
		}
		o.mu.Lock()
		for _, a := range o.all[before:] {
			if a.closed.Load() != 1 {
				t.Errorf("%s: app %s opened for the rejected config was not closed", name, a.spec.Path)
			}
		}
		o.mu.Unlock()
		if res, body := get(t, c, "http://a.test/api/x"); res.StatusCode != 200 || decode(t, body).App != "/api" {
			t.Errorf("%s: old config not serving: %d %s", name, res.StatusCode, body)
		}
	}
	if o.get("a/api").closed.Load() != 0 {
		t.Error("an app of the serving config was closed")
	}
}

// TestRedirectToHTTPS: GET gets 301, POST 308, to the https binding's port.
func TestRedirectToHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
sites:
  - name: s
    redirectToHttps: true
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: app}]
`), o)
	port := strconv.Itoa(s.Addrs()["https"].(*net.TCPAddr).Port)
	c := client(t, h1, s.Addrs()["http"].String(), e.pki, false)
	res, _ := get(t, c, "http://a.test/p/q?x=1")
	if want := "https://a.test:" + port + "/p/q?x=1"; res.StatusCode != 301 || res.Header.Get("Location") != want {
		t.Errorf("GET: %d %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
	res, _ = do(t, c, newReq(t, "POST", "http://a.test/p", strings.NewReader("x")))
	if res.StatusCode != 308 {
		t.Errorf("POST: %d, want 308", res.StatusCode)
	}
	tc := client(t, https1, s.Addrs()["https"].String(), e.pki, false)
	if res, _ := get(t, tc, "https://a.test/p"); res.StatusCode != 200 {
		t.Errorf("https: %d", res.StatusCode)
	}
}

// TestCertificateReload: a certificate rewritten on disk is served without a
// reload; a broken one is rejected by Reload and the last good one stays.
func TestCertificateReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	cfg := e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`)
	s := start(t, cfg, o)
	addr := s.Addrs()["https"].String()
	served := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost"})
		if err != nil {
			return "error: " + err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "server one" {
		t.Fatalf("served %q", got)
	}
	e.pki.writeServerCert(t, "server two")
	waitFor(t, "the new certificate", func() bool { return served() == "server two" })

	if err := os.WriteFile(e.pki.certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(context.Background(), cfg); err == nil {
		t.Error("Reload with a broken certificate succeeded")
	}
	if got := served(); got != "server two" {
		t.Errorf("after a broken certificate: served %q, want the last good one", got)
	}
}

// TestShutdown: Run drains an in-flight request, refuses new connections,
// closes a WebSocket, closes every app and returns nil.
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
shutdownTimeout: 3s
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`), o)
	addr := s.Addrs()["http"].String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws := openEcho(t, ctx, addr, e)
	defer ws.CloseNow()

	inflight := make(chan int, 1)
	go func() {
		res, err := client(t, h1, addr, e.pki, false).Get("http://x/block")
		if err != nil {
			inflight <- -1
			return
		}
		res.Body.Close()
		inflight <- res.StatusCode
	}()
	app := o.get("s/")
	waitFor(t, "the blocked request", func() bool { return app.hits.Load() == 2 })

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	if app.closed.Load() != 0 {
		t.Error("app closed before its requests finished")
	}
	close(o.block)
	if got := <-inflight; got != 200 {
		t.Errorf("in-flight request: %d", got)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Error("WebSocket still open after shutdown")
	}
	if app.closed.Load() != 1 {
		t.Errorf("app closed %d times, want 1", app.closed.Load())
	}
}

// TestReloadProtocols switches h2c, HTTP/3 and timeouts on a running server:
// the sockets stay, clients keep working, Alt-Svc follows HTTP/3.
func TestReloadProtocols(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	const base = `
shutdownTimeout: 2s
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: app}]
`
	off := e.config(t, base)
	on := e.config(t, "protocols: {h2c: true, http3: true}\ntimeouts: {header: 10s, idle: 30s}\n"+base)
	s := start(t, off, o)
	httpAddr, httpsAddr := s.Addrs()["http"].String(), s.Addrs()["https"].String()
	c2 := client(t, h2, httpsAddr, e.pki, false)
	if res, _ := get(t, c2, "https://localhost/"); res.StatusCode != 200 || res.Header.Get("Alt-Svc") != "" {
		t.Fatalf("before: %d Alt-Svc %q", res.StatusCode, res.Header.Get("Alt-Svc"))
	}
	if s.H3Addr("https") != nil {
		t.Fatal("HTTP/3 on before it was configured")
	}

	if err := s.Reload(context.Background(), on); err != nil {
		t.Fatal(err)
	}
	if s.Addrs()["https"].String() != httpsAddr || s.Addrs()["http"].String() != httpAddr {
		t.Fatal("listeners moved")
	}
	res, _ := get(t, c2, "https://localhost/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Alt-Svc"), `h3=":`) {
		t.Errorf("after: %d Alt-Svc %q", res.StatusCode, res.Header.Get("Alt-Svc"))
	}
	if res, body := get(t, client(t, h3, addrOf(t, s, "https", h3), e.pki, false), "https://localhost/"); res.StatusCode != 200 || decode(t, body).Proto != 3 {
		t.Errorf("HTTP/3 after reload: %d %s", res.StatusCode, body)
	}
	if res, body := get(t, client(t, h2c, httpAddr, e.pki, false), "http://localhost/"); res.StatusCode != 200 || decode(t, body).Proto != 2 {
		t.Errorf("h2c after reload: %d %s", res.StatusCode, body)
	}

	if err := s.Reload(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	if s.H3Addr("https") != nil {
		t.Error("HTTP/3 still on")
	}
	if res, _ := get(t, c2, "https://localhost/"); res.StatusCode != 200 || res.Header.Get("Alt-Svc") != "" {
		t.Errorf("after switching off: %d Alt-Svc %q", res.StatusCode, res.Header.Get("Alt-Svc"))
	}
}
