package pipeline

import "strings"

// CleanPath returns the escaped request path p as Gatehouse routes and
// forwards it: percent-encoded unreserved characters (RFC 3986 §2.3:
// ALPHA, DIGIT, "-", ".", "_", "~") decoded, so that "%2e" is a dot and
// "%61pi" is "api", and dot segments removed (RFC 3986 §5.2.4), so that
// "/x/../api" and "/x/%2e%2e/api" are "/api". Every other escape is kept
// as written: "%2F" stays "%2F" and is not a segment separator; a '%'
// that starts no escape is written "%25". A ".."
// never climbs above the root. A path that does not start with '/' (the
// "*" of OPTIONS, a CONNECT authority) is returned as is.
//
// CleanPath is pure; it does not allocate when p has no escape and no dot
// segment, the common case.
func CleanPath(p string) string {
	if len(p) == 0 || p[0] != '/' || !needsClean(p) {
		return p
	}
	p = decodeUnreserved(p)
	return removeDotSegments(p)
}

// needsClean reports whether p holds an escape or a segment that starts
// with a dot.
func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return true
		case '.':
			if p[i-1] == '/' { // i > 0: p starts with '/'
				return true
			}
		}
	}
	return false
}

// decodeUnreserved decodes the escapes of unreserved characters in p. A
// '%' that does not start an escape becomes "%25": left alone, it could
// start a new escape with what decoding puts after it ("%7%30" would be
// "%70"), and an app would then decode the path differently.
func decodeUnreserved(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
			b.WriteString("%25") // a '%' that starts no escape
			continue
		}
		if d := byte(unhex(p[i+1])<<4 | unhex(p[i+2])); unreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteString(p[i : i+3])
		}
		i += 2
	}
	return b.String()
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments applies RFC 3986 §5.2.4 to an absolute path: "." and
// ".." segments go; a path that ended in one of them ends in '/'.
func removeDotSegments(p string) string {
	segs := strings.Split(p[1:], "/")
	out := segs[:0]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}

// DecodePath returns the cleaned path p with every escape decoded: the
// path as an app that decodes it fully (%2F included) reads it. The stages
// that match against unescaped text (<location> scopes, request filtering's
// hidden segments and extensions, URL Rewrite's rule input) use it.
// Decoding cannot give such a stage another path than the app's: the
// request checks (Validate, Request.Rewrite) refuse every path whose
// decoded form has a dot segment or is routed elsewhere. A '%' that starts
// no escape is kept. DecodePath does not allocate when p has no escape.
func DecodePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && unhex(p[i+1]) >= 0 && unhex(p[i+2]) >= 0 {
			c = byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
		}
		b = append(b, c)
	}
	return string(b)
}

// badPath says why the cleaned path p must be refused with 400, or
// returns "" when every stage and the app may judge it: it refuses a path
// that an app reading "%2F" and "%5C" (or '\') as separators would see
// with a dot segment ("/x/..%2Fadmin" is "/admin" to it, but not to the
// <location> matcher), or routed to another application than p is. The
// routing check needs router; nil skips it.
func badPath(p string, router Router) string {
	if len(p) == 0 || p[0] != '/' || !hasSeparatorEscape(p) {
		return ""
	}
	alt := separatorsDecoded(p)
	if hasDotSegment(alt) {
		return "encoded / or \\ makes a dot segment"
	}
	if router != nil && router.Route(alt) != router.Route(p) {
		return "encoded / or \\ changes the application"
	}
	return ""
}

// hasSeparatorEscape reports whether p holds "%2F", "%5C" (any case) or
// '\'.
func hasSeparatorEscape(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			return true
		case '%':
			if i+2 < len(p) && isSeparatorEscape(p[i+1], p[i+2]) {
				return true
			}
		}
	}
	return false
}

func isSeparatorEscape(hi, lo byte) bool {
	lo |= 0x20 // lower case
	return hi == '2' && lo == 'f' || hi == '5' && lo == 'c'
}

// separatorsDecoded returns p with "%2F", "%5C" and '\' written '/'.
func separatorsDecoded(p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\':
			b = append(b, '/')
		case p[i] == '%' && i+2 < len(p) && isSeparatorEscape(p[i+1], p[i+2]):
			b = append(b, '/')
			i += 2
		default:
			b = append(b, p[i])
		}
	}
	return string(b)
}

// hasDotSegment reports whether the absolute path p has a "." or ".."
// segment.
func hasDotSegment(p string) bool {
	for i := 1; i < len(p); i++ {
		if p[i-1] != '/' || p[i] != '.' {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}
