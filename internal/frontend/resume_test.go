package frontend_test

import (
	"crypto/tls"
	"testing"
)

// TestTLSSessionResumption checks that the front door resumes TLS
// sessions: a client that kept the ticket of its first connection skips
// the full handshake on the next one, on HTTP/1.1 and on HTTP/2. A new
// connection per request then costs a resumed handshake, not a full one.
func TestTLSSessionResumption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: app}]
`), newOpener())
	addr := s.Addrs()["https"].String()
	for _, alpn := range []string{"http/1.1", "h2"} {
		cfg := &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{alpn},
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i, want := range []bool{false, true} {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatalf("%s, connection %d: %v", alpn, i+1, err)
			}
			// A TLS 1.3 ticket comes after the handshake: one read round
			// trip lets the client take it before the connection closes.
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil && alpn == "http/1.1" {
				t.Fatal(err)
			}
			_, _ = c.Read(make([]byte, 1))
			st := c.ConnectionState()
			_ = c.Close()
			if st.DidResume != want {
				t.Errorf("%s, connection %d: resumed %v, want %v", alpn, i+1, st.DidResume, want)
			}
		}
	}
}
