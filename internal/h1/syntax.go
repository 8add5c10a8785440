package h1

import "strings"

// This file states the HTTP/1 syntax rules once, for the request parser,
// the front door's response writer and the app-side client alike.

// IsToken reports whether s is an RFC 9110 §5.6.2 token (a method, a field
// name, a coding): one or more tchar.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// TokenPrefix returns the length of s's leading run of tchar. A field
// line "name:value" has a token name when its run ends at the colon,
// which is no tchar: the parsers check the name as they look for the
// colon, in one walk.
func TokenPrefix(s string) int {
	i := 0
	for i < len(s) && tokenChar[s[i]] {
		i++
	}
	return i
}

// tokenChar holds the tchar: digits, letters and !#$%&'*+-.^_`|~.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ValidFieldValue reports whether v may be a field value (RFC 9110 §5.5):
// visible characters, obs-text (bytes from 0x80), spaces and tabs; no other
// control character (CR, LF and NUL least of all), no DEL. Surrounding
// whitespace is the caller's to trim.
//
// Every value of every request and response passes here (the app-side
// client and the front door's writer check each), so it reads words: a
// word with no byte below 0x20 and none equal to 0x7f is valid as a whole;
// one with such a byte (a tab, or a refused one) is checked byte by byte.
// A value of 8 bytes or more is read eight at a time, its last word ending
// with it (overlapping the one before); one of 4 to 7 bytes as two words
// of four.
func ValidFieldValue(v string) bool {
	switch n := len(v); {
	case n >= 8:
		for w := v; len(w) > 8; w = w[8:] {
			if !clean64(load64(w)) && !validFieldBytes(w[:8]) {
				return false
			}
		}
		last := v[n-8:]
		return clean64(load64(last)) || validFieldBytes(last)
	case n >= 4:
		return clean32(load32(v)) && clean32(load32(v[n-4:])) || validFieldBytes(v)
	}
	return validFieldBytes(v)
}

// load64 and load32 read the first eight and four bytes of s, little
// endian (the compiler makes each one load).
func load64(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load32(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// clean64 reports whether no byte of x is below 0x20 or equal to 0x7f. A
// byte's high bit is set in (x-0x20…)&^x when a byte is below 0x20, and in
// (y-0x01…)&^y when a byte of y is 0, that is, a byte of x is 0x7f; a
// borrow may mark a higher byte too, but only after a lower one was marked
// rightly, so the answer for the word is exact.
func clean64(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	y := x ^ 0x7f*ones
	return ((x-0x20*ones)&^x|(y-ones)&^y)&highs == 0
}

// clean32 is clean64 for four bytes.
func clean32(x uint32) bool {
	const ones, highs = 0x01010101, 0x80808080
	y := x ^ 0x7f*ones
	return ((x-0x20*ones)&^x|(y-ones)&^y)&highs == 0
}

// validFieldBytes is ValidFieldValue byte by byte.
func validFieldBytes(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimOWS removes optional whitespace (spaces and tabs) around s.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// HasToken reports whether the comma-separated list v holds tok, ignoring
// ASCII case and the whitespace around each element.
func HasToken(v, tok string) bool {
	for v != "" {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if EqualFoldASCII(TrimOWS(v[:i]), tok) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// connectionTokens reports whether the Connection value v holds upgrade,
// keep-alive and close (each as HasToken would), in one walk.
func connectionTokens(v string) (upgrade, keepAlive, close bool) {
	for v != "" {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t := TrimOWS(v[:i])
		upgrade = upgrade || tokenIs(t, "upgrade")
		keepAlive = keepAlive || tokenIs(t, "keep-alive")
		close = close || tokenIs(t, "close")
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return upgrade, keepAlive, close
}

// tokenIs is EqualFoldASCII(t, lower) for a lower in small ASCII letters
// (FoldIs's lower).
func tokenIs(t, lower string) bool { return FoldIs(t, lower) }

// EqualFoldASCII reports whether s and t are equal ignoring ASCII case.
// Tokens are ASCII and compared so (RFC 9110 §5.6.2): unlike
// strings.EqualFold it takes no other rune for an ASCII letter (U+212A,
// the Kelvin sign, for k; U+017F, the long s, for s), so "chun\u212aed" is
// not "chunked" here, as it is not for a peer that reads the same bytes.
func EqualFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

// FoldIs reports whether s is lower ignoring ASCII case, where lower is
// ASCII without capitals (a field name or token spelled in small letters):
// for an s as long as lower, strings.EqualFold(s, lower), by words. An s
// of another length is not lower (strings.EqualFold would take a longer s
// with the Kelvin sign for a k or the long s for an s; callers compare
// names of lower's length, or tokens, which are ASCII).
func FoldIs(s, lower string) bool {
	n := len(s)
	if n != len(lower) {
		return false
	}
	switch {
	case n >= 8:
		for i := 0; i < n-8; i += 8 {
			if lower64(load64(s[i:i+8])) != load64(lower[i:i+8]) {
				return false
			}
		}
		return lower64(load64(s[n-8:n])) == load64(lower[n-8:n])
	case n >= 4:
		return lower32(load32(s[:4])) == load32(lower[:4]) && lower32(load32(s[n-4:n])) == load32(lower[n-4:n])
	}
	for i := 0; i < n; i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// lower64 maps the ASCII capitals among x's bytes to small letters and
// leaves the other bytes as they are. Per byte b with its high bit
// cleared (h ≤ 0x7f), h+0x3f has its high bit set when h ≥ 'A' and
// h+0x25 when h > 'Z', neither carrying into the next byte; a byte whose
// own high bit is set is no ASCII and stays.
func lower64(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	h := x &^ highs
	upper := (h + (0x80-'A')*ones) &^ (h + (0x80-'Z'-1)*ones) &^ x & highs
	return x | upper>>2
}

// lower32 is lower64 for four bytes.
func lower32(x uint32) uint32 {
	const ones, highs = 0x01010101, 0x80808080
	h := x &^ highs
	upper := (h + (0x80-'A')*ones) &^ (h + (0x80-'Z'-1)*ones) &^ x & highs
	return x | upper>>2
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// onlyToken reports whether every element of the comma-separated list v is
// tok (ignoring case), and there is at least one.
func onlyToken(v, tok string) bool {
	seen := false
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = TrimOWS(t); t == "" {
			continue
		}
		if !EqualFoldASCII(t, tok) {
			return false
		}
		seen = true
	}
	return seen
}

// ChunkSize parses a chunk-size line without its line ending (RFC 9112
// §7.1): 1 to 15 hex digits, then chunk extensions, each ";" name [ "="
// ( token / quoted-string ) ], written without the optional whitespace
// (BWS) around ";" and "=", which net/http refuses too. Anything else is a
// 400 Error.
func ChunkSize(line []byte) (int64, error) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i == 15 {
			return 0, bad("chunk size too large")
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, bad("invalid chunk size")
	}
	if !validExtensions(line[i:]) {
		return 0, bad("invalid chunk extension")
	}
	return size, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// validExtensions checks chunk extensions as ChunkSize states them.
func validExtensions(s []byte) bool {
	token := func() bool {
		n := 0
		for n < len(s) && tokenChar[s[n]] {
			n++
		}
		s = s[n:]
		return n > 0
	}
	for len(s) > 0 {
		if s[0] != ';' {
			return false
		}
		s = s[1:]
		if !token() {
			return false
		}
		if len(s) == 0 || s[0] != '=' {
			continue
		}
		s = s[1:]
		if len(s) > 0 && s[0] == '"' {
			if !quoted(&s) {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quoted consumes a quoted-string at the start of *s.
func quoted(s *[]byte) bool {
	b := (*s)[1:]
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			*s = b[i+1:]
			return true
		case c == '\\':
			i++
			if i == len(b) || b[i] < ' ' && b[i] != '\t' || b[i] == 0x7f {
				return false
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return false
		}
	}
	return false
}
