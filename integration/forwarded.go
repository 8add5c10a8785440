package integration

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header names used by forwarded-header processing, as ASP.NET Core's
// ForwardedHeadersMiddleware names them.
const (
	HeaderForwardedFor   = "X-Forwarded-For"
	HeaderForwardedProto = "X-Forwarded-Proto"
	HeaderOriginalFor    = "X-Original-For"
	HeaderOriginalProto  = "X-Original-Proto"
)

// forwardResult is what applyForwarded changed. Empty fields mean unchanged.
type forwardResult struct {
	remoteAddr string // new RemoteAddr, "ip:port" or "[ip]:port"
	scheme     string // new scheme, lower case
}

// applyForwarded applies X-Forwarded-For and X-Forwarded-Proto in h the way
// ASP.NET Core's ForwardedHeadersMiddleware does with the options IIS
// integration sets: ForwardLimit=1, KnownNetworks 127.0.0.0/8, KnownProxies
// ::1, RequireHeaderSymmetry=false. Only the right-most entry of each header
// is used, and only when the immediate peer (remoteAddr) is a loopback
// address. An entry that does not parse stops processing, so neither header
// is applied from that set, exactly as ASP.NET Core's loop breaks. Applied
// entries are removed from h and the previous values are saved in
// X-Original-For and X-Original-Proto. h is modified in place.
func applyForwarded(h http.Header, remoteAddr, scheme string) forwardResult {
	fors := splitValues(h.Values(HeaderForwardedFor))
	protos := splitValues(h.Values(HeaderForwardedProto))
	if len(fors) == 0 && len(protos) == 0 {
		return forwardResult{}
	}
	if !isLoopbackAddr(remoteAddr) {
		return forwardResult{}
	}
	var res forwardResult
	if len(fors) > 0 {
		ap, ok := parseEndpoint(fors[len(fors)-1])
		if !ok {
			return forwardResult{}
		}
		res.remoteAddr = ap.String()
	}
	if len(protos) > 0 && validScheme(protos[len(protos)-1]) {
		res.scheme = strings.ToLower(protos[len(protos)-1])
	}
	if res.remoteAddr != "" {
		if remoteAddr != "" {
			h.Set(HeaderOriginalFor, remoteAddr)
		}
		setRemaining(h, HeaderForwardedFor, fors[:len(fors)-1])
	}
	if res.scheme != "" {
		h.Set(HeaderOriginalProto, scheme)
		setRemaining(h, HeaderForwardedProto, protos[:len(protos)-1])
	}
	return res
}

// splitValues splits comma-separated header values into trimmed, non-empty
// entries, across all lines of the header.
func splitValues(lines []string) []string {
	var out []string
	for _, line := range lines {
		for v := range strings.SplitSeq(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func setRemaining(h http.Header, name string, rest []string) {
	if len(rest) == 0 {
		h.Del(name)
		return
	}
	h.Set(name, strings.Join(rest, ", "))
}

// parseEndpoint parses an X-Forwarded-For entry: "ip:port", "[v6]:port",
// "[v6]" or a bare IPv4 or IPv6 address. A missing port becomes 0, as
// ASP.NET Core's IPEndPoint.TryParse gives.
func parseEndpoint(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 0), true
	}
	return netip.AddrPort{}, false
}

// isLoopbackAddr reports whether remoteAddr ("host:port" as in
// http.Request.RemoteAddr, or a bare IP) is in 127.0.0.0/8 or is ::1,
// including the IPv4-mapped forms.
func isLoopbackAddr(remoteAddr string) bool {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback()
}

// validScheme reports whether s is an RFC 3986 scheme: a letter followed by
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
