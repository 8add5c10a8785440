// Package reqtarget holds what the HTTP/1.1 parser and the HTTP/2 server
// do alike to a request target before it is forwarded. It depends on
// nothing of the module, so that both protocol engines may import it.
package reqtarget

// Escape returns s, a request target or a part of one (its path or its
// query), as it is forwarded: its bytes beyond ASCII and '#' are
// percent-encoded, as a client sending UTF-8 writes them, so that they
// never reach an app raw in its request line. A target with nothing to
// encode is returned as it is. A space or control byte (0x00–0x20 and
// 0x7f), which no request target holds (RFC 3986 §2), makes s invalid:
// Escape returns "" and false.
func Escape(s string) (string, bool) {
	escape := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c == 0x7f:
			return "", false
		case c >= 0x80 || c == '#':
			escape = true
		}
	}
	if !escape {
		return s, true
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '#' {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b), true
}
