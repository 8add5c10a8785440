package frontend

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRawRemote: a raw connection's remote address is formatted as
// netip.AddrPort's String, into the connection's own bytes (no
// allocation) when it fits them.
func TestRawRemote(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1:5017",
		"[::1]:443",
		"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
		"[fe80::1%" + strings.Repeat("z", 40) + "]:80", // longer than remoteMem
	} {
		lc := &leanConn{raw: &rawConn{remote: netip.MustParseAddrPort(s)}}
		got := lc.rawRemote()
		if got != s {
			t.Errorf("rawRemote = %q; want %q", got, s)
		}
		if len(s) <= len(lc.remoteMem) {
			if allocs := testing.AllocsPerRun(100, func() { got = lc.rawRemote() }); allocs != 0 {
				t.Errorf("%s: %v allocations; want none", s, allocs)
			}
		}
	}
}
