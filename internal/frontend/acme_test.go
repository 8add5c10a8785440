package frontend_test

import (
	"crypto/tls"
	"io"
	"testing"
	"time"
)

// TestACMETLSALPNIsNotServed: a connection that negotiated acme-tls/1 (a
// tls-alpn-01 validation) is closed after the handshake; an HTTP request
// sent on it gets no answer, neither from the lean HTTP/1.1 loop nor from
// net/http.
func TestACMETLSALPNIsNotServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
	cert, err := tls.LoadX509KeyPair(e.pki.certFile, e.pki.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s.ServeACMEChallenge(cert)
	c, err := tls.Dial("tcp", s.Addrs()["https"].String(), &tls.Config{
		ServerName: "localhost", RootCAs: e.pki.caPool, NextProtos: []string{"acme-tls/1"}})
	if err != nil {
		t.Fatalf("tls-alpn-01 handshake: %v", err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "acme-tls/1" {
		t.Fatalf("negotiated %q, want acme-tls/1", p)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Logf("write: %v (the server had closed already)", err)
	}
	// A guard against hanging only: the server closes at once.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) > 0 || err != nil {
		t.Errorf("read %q, %v; want the connection closed without an answer", b, err)
	}
}
