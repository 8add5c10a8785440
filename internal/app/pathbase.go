package app

import (
	"net/http"
	"strings"
)

// stripPathBase returns r as the app sees it when its virtual path base is
// stripped: "/api/x?y" becomes "/x?y" ("/api" becomes "/"), and
// X-Forwarded-Prefix is base (what the client sent in that field is
// replaced). The prefix is matched without case, as routing does; a path
// outside base (a front-door rewrite) is left as it is.
func stripPathBase(r *http.Request, base string) *http.Request {
	rest, ok := cutPathPrefix(r.URL.Path, base)
	if !ok {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = rest
	if u.RawPath != "" {
		if raw, ok := cutPathPrefix(u.RawPath, base); ok {
			u.RawPath = raw
		} else {
			u.RawPath = ""
		}
	}
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	r2.Header = r.Header.Clone()
	r2.Header.Set("X-Forwarded-Prefix", base)
	return r2
}

// cutPathPrefix returns path without base when base is a segment-wise
// prefix of path, the rest starting with "/".
func cutPathPrefix(path, base string) (string, bool) {
	if len(path) < len(base) || !strings.EqualFold(path[:len(base)], base) {
		return path, false
	}
	rest := path[len(base):]
	switch {
	case rest == "":
		return "/", true
	case rest[0] == '/':
		return rest, true
	}
	return path, false
}
