package frontend

import (
	"net/netip"
	"testing"
)

// TestConnCounterPerClient: the per-client limit counts a client's open
// connections (an IPv6 client by its /64), refuses one more, takes one
// again after a release, leaves exempt and unknown clients alone, and
// forgets a client whose last connection closed; many clients coming and
// going leave no more state than the most open at once.
func TestConnCounterPerClient(t *testing.T) {
	var cc connCounter
	cc.perClient.Store(2)
	a := netip.MustParseAddr("192.0.2.1")
	b6 := netip.MustParseAddr("2001:db8::1")
	b6same := netip.MustParseAddr("2001:db8::ffff") // the same /64
	admit := func(c netip.Addr, exempt, want bool) connPlace {
		t.Helper()
		p, _, ok := cc.admit(c, exempt)
		if ok != want {
			t.Fatalf("admit(%v, exempt %v) = %v; want %v", c, exempt, ok, want)
		}
		return p
	}
	a1, a2 := admit(a, false, true), admit(a, false, true)
	admit(a, false, false)
	ax := admit(a, true, true) // a trusted proxy: not limited
	b1, b2 := admit(b6, false, true), admit(b6same, false, true)
	admit(b6, false, false)
	u := admit(netip.Addr{}, false, true)
	a1.release()
	a3 := admit(a, false, true)
	admit(a, false, false)
	for _, p := range []connPlace{a2, a3, ax, b1, b2, u} {
		p.release()
	}
	if n := cc.open.Load(); n != 0 {
		t.Fatalf("%d connections open after every release", n)
	}
	if len(cc.byClient) != 0 {
		t.Fatalf("%d clients counted after every release", len(cc.byClient))
	}
	admit(a, false, true)
	admit(a, false, true)
	admit(a, false, false)

	// Churn: one client at a time, each with one connection.
	var cc2 connCounter
	cc2.perClient.Store(1)
	for i := range 1000 {
		c := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		p, _, ok := cc2.admit(c, false)
		if !ok {
			t.Fatalf("client %v refused", c)
		}
		p.release()
	}
	if len(cc2.byClient) != 0 || len(cc2.clients) > 1 {
		t.Fatalf("after 1,000 clients one at a time: %d counted, %d slots", len(cc2.byClient), len(cc2.clients))
	}
}
