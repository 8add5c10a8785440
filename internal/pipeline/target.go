package pipeline

import (
	"github.com/gatehouse/gatehouse/internal/h1"
)

// Validate says why r must be refused with 400 before routing, or returns
// "" when it may go on. It is the one request check of every protocol
// (HTTP/1.x, HTTP/2, h2c, HTTP/3): whatever one protocol refuses, all do.
// r.Path must be cleaned (CleanPath) and r.Router set. It refuses:
//
//   - the HTTP/2 connection preface read as an HTTP/1 request ("PRI *",
//     RFC 9113 §3.4), and a method that is not a token (RFC 9110 §9.1);
//   - CONNECT, unless it is the extended CONNECT of WebSockets over
//     HTTP/2 (RFC 8441: the ":protocol" pseudo-header is "websocket"):
//     Gatehouse is no tunnel;
//   - the asterisk form with a method other than OPTIONS (RFC 9112
//     §3.2.4), a path that does not start with '/', and a path or query
//     with a space or control byte, which no request target holds (RFC
//     3986 §2; the HTTP/1.1 parser and the HTTP/2 server refuse it as they
//     read it, the HTTP/3 way passes it on for this check: the query would
//     be written as it is into the app's request line);
//   - a path whose decoded form the app could route differently (badPath);
//   - a Host (or :authority) that is not a host and port (RFC 9110 §7.2),
//     by the rule the HTTP/1.1 parser applies, h1.ValidHost.
func Validate(r *Request) string {
	switch {
	case r.Method == "PRI":
		return "HTTP/2 connection preface on an HTTP/1 connection"
	case !h1.IsToken(r.Method):
		return "method is not a token"
	case r.Method == "CONNECT" && !h1.EqualFoldASCII(r.Header.Get(":protocol"), "websocket"):
		return "CONNECT is not served"
	case r.Path == "*":
		if r.Method != "OPTIONS" {
			return "asterisk-form target with " + r.Method
		}
	case r.Path == "" || r.Path[0] != '/':
		return "request target is not an absolute path"
	case hasSpaceOrControl(r.Path) || hasSpaceOrControl(r.RawQuery):
		return "request target with a space or control byte"
	}
	if reason := badPath(r.Path, r.Router); reason != "" {
		return reason
	}
	if !h1.ValidHost(r.Host) {
		return "invalid Host"
	}
	return ""
}

// hasSpaceOrControl reports whether p holds a space or a control byte.
func hasSpaceOrControl(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
