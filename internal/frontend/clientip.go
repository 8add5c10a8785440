package frontend

import (
	"net/netip"
	"strings"
)

// forwardedClient returns the client's address for a request whose TCP
// peer is peer: when peer is one of the trusted proxies, X-Forwarded-For
// (values xff, in order) is read from the right and the first address that
// is not a trusted proxy is the client. When every listed address is
// trusted, the leftmost is. An entry that is not an address ends the walk
// at the proxy that wrote it. A peer that is not trusted is the client,
// whatever X-Forwarded-For says.
func forwardedClient(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	if !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			var item string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				item, list = list[j+1:], list[:j]
			} else {
				item, list = list, ""
			}
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			a, ok := parseForwardedAddr(item)
			if !ok {
				return client
			}
			client = a
			if !isTrusted(a, trusted) {
				return a
			}
		}
	}
	return client
}

// isTrusted reports whether a is in one of the trusted prefixes. A zone
// (a link-local peer's "%eth0") is not part of the match: a prefix never
// contains a zoned address.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseForwardedAddr parses an X-Forwarded-For entry: "203.0.113.7",
// "203.0.113.7:5100", "2001:db8::1" or "[2001:db8::1]:5100".
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
