package frontend

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzForwardedClient checks that the client found behind a trusted proxy
// is the peer or an address the X-Forwarded-For list holds, and that an
// untrusted peer is always the client.
func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.2.3.4, 10.0.0.2", "[2001:db8::1]:80, x", " , ,", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.0.0.1")
	stranger := netip.MustParseAddr("203.0.113.1")
	f.Fuzz(func(t *testing.T, xff string) {
		if got := forwardedClient(stranger, []string{xff}, trusted); got != stranger {
			t.Fatalf("untrusted peer: client %s from %q", got, xff)
		}
		got := forwardedClient(peer, []string{xff}, trusted)
		if got == peer {
			return
		}
		for item := range strings.SplitSeq(xff, ",") {
			if a, ok := parseForwardedAddr(strings.TrimSpace(item)); ok && a == got {
				return
			}
		}
		t.Fatalf("client %s is not in %q", got, xff)
	})
}
