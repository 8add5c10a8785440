package rewrite

import "strings"

// fastPattern is a regular expression that published rules use all the
// time and that needs no engine: "match anything" (".*", "(.*)", "^(.*)$"
// …) and a literal with optional anchors ("off", "^example\.com$",
// "^api/"). It is used only for ASCII input without line breaks, where its
// answer is the engine's.
type fastPattern struct {
	all        bool   // ".*" with optional anchors
	group      bool   // all: the whole input is also capture 1
	lit        string // literal, unescaped
	start, end bool   // literal anchored with ^ / $
}

// parseFast returns the fastPattern for an ECMAScript pattern, or nil.
func parseFast(p string) *fastPattern {
	f := &fastPattern{}
	body := p
	if strings.HasPrefix(body, "^") {
		f.start, body = true, body[1:]
	}
	if strings.HasSuffix(body, "$") && !strings.HasSuffix(body, `\$`) {
		f.end, body = true, body[:len(body)-1]
	}
	switch body {
	case ".*":
		f.all = true
		return f
	case "(.*)":
		f.all, f.group = true, true
		return f
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '-', c == '/', c == '=', c == '&', c == '%', c == ' ', c == ',', c == ':', c == ';', c == '@', c == '!', c == '~', c == '\'', c == '"', c == '<', c == '>', c == '#':
			b.WriteByte(c)
		case c == '\\' && i+1 < len(body) && strings.IndexByte(`.\/-?*+()[]{}|^$`, body[i+1]) >= 0:
			i++
			b.WriteByte(body[i])
		default:
			return nil
		}
	}
	if b.Len() == 0 {
		return nil
	}
	f.lit = b.String()
	return f
}

// match runs f on s (ASCII, no line breaks); caps as the engine gives them.
func (f *fastPattern) match(s string, fold bool) ([]string, bool) {
	i, j, ok := f.find(s, fold)
	switch {
	case !ok:
		return nil, false
	case f.group:
		return []string{s, s}, true
	}
	return []string{s[i:j]}, true
}

// find runs f on s (ASCII, no line breaks) and returns where it matched.
func (f *fastPattern) find(s string, fold bool) (i, j int, ok bool) {
	if f.all {
		return 0, len(s), true
	}
	n := len(f.lit)
	eq := func(a string) bool {
		if fold {
			return strings.EqualFold(a, f.lit)
		}
		return a == f.lit
	}
	switch {
	case len(s) < n:
		return 0, 0, false
	case f.start && f.end:
		if len(s) == n && eq(s) {
			return 0, n, true
		}
	case f.start:
		if eq(s[:n]) {
			return 0, n, true
		}
	case f.end:
		if eq(s[len(s)-n:]) {
			return len(s) - n, len(s), true
		}
	default:
		for i := 0; i+n <= len(s); i++ {
			if eq(s[i : i+n]) {
				return i, i + n, true
			}
		}
	}
	return 0, 0, false
}

// plainASCII reports whether s is ASCII without line breaks, where the
// fast patterns agree with the engine.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '\n' || c == '\r' {
			return false
		}
	}
	return true
}
