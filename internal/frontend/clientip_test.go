package frontend

import (
	"net/netip"
	"testing"
)

func TestForwardedClient(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fe80::/10")}
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer ignores xff", "203.0.113.9", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer without xff", "10.0.0.5", nil, "10.0.0.5"},
		{"one proxy", "10.0.0.5", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed entry left of the real client", "10.0.0.5", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.5", []string{"198.51.100.1, 10.1.1.1", "10.2.2.2"}, "198.51.100.1"},
		{"all trusted", "10.0.0.5", []string{"10.3.3.3, 10.1.1.1"}, "10.3.3.3"},
		{"port and brackets", "::1", []string{"[2001:db8::7]:5100"}, "2001:db8::7"},
		{"ipv4 with port", "::1", []string{"198.51.100.1:443"}, "198.51.100.1"},
		{"garbage stops at the proxy that wrote it", "10.0.0.5", []string{"198.51.100.1, unknown, 10.1.1.1"}, "10.1.1.1"},
		{"empty items", "10.0.0.5", []string{" , 198.51.100.1 ,"}, "198.51.100.1"},
		{"mapped address", "10.0.0.5", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"link-local proxy with its zone", "fe80::1%eth0", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := forwardedClient(netip.MustParseAddr(tt.peer), tt.xff, trusted)
			if got.String() != tt.want {
				t.Errorf("forwardedClient(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}
