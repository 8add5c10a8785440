package frontend_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"testing"
)

// TestMinTLSReloadKeepsConnections: tls.minVersion applies to the next
// handshake after a reload, and the change restarts nothing: an HTTP/2
// connection made before it carries the next request.
func TestMinTLSReloadKeepsConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	const sites = `
shutdownTimeout: 2s
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`
	s := start(t, e.config(t, sites), newOpener())
	addr := s.Addrs()["https"].String()
	c := client(t, h2, addr, e.pki, false)
	reused := func() bool {
		t.Helper()
		var again bool
		req, _ := http.NewRequest("GET", "https://localhost/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { again = i.Reused },
		}))
		if res, _ := do(t, c, req); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		return again
	}
	reused()
	if err := s.Reload(context.Background(), e.config(t, "tls: {minVersion: \"1.3\"}\n"+sites)); err != nil {
		t.Fatal(err)
	}
	if !reused() {
		t.Error("the HTTP/2 connection made before the reload was closed: changing tls.minVersion restarted the server")
	}
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err == nil {
		tc.Close()
		t.Error("a TLS 1.2 handshake succeeded after minVersion became 1.3")
	}
}
