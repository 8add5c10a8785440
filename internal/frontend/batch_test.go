package frontend_test

import (
	"testing"
)

// TestHTTP2WritesGathered checks that the writes of HTTP/2 connections
// (h2c with prior knowledge, and h2 chosen by ALPN) are gathered, and
// those of HTTP/1.1 connections, cleartext or TLS, are not.
func TestHTTP2WritesGathered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "a-root", "a-api", "b-root")
	s := start(t, e.config(t, twoSites), newOpener())
	modes := []mode{h1, h2c, https1, h2}
	for _, m := range modes {
		c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, true)
		if res, body := get(t, c, m.url("a.test", "/")); res.StatusCode != 200 {
			t.Fatalf("%s: status %d (%s)", m, res.StatusCode, body)
		}
	}
	var batched, plain int
	waitFor(t, "the connections to wait for a request", func() bool {
		batched, plain = s.WaitingBatched()
		return batched+plain >= len(modes)
	})
	if batched != 2 || plain != 2 {
		t.Errorf("%d connections gathered and %d not; want 2 (h2c, h2) and 2 (HTTP/1.1, HTTPS/1.1)", batched, plain)
	}
}
