package app

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// stripRequest returns r as the app sees it when its virtual path base is
// stripped: a copy of r whose path is below base ("/api/x?y" is forwarded as
// "/x?y", "/api" as "/"), with X-Forwarded-Prefix set to base in r's header
// (what the client sent in that field is replaced). The prefix is matched
// without case, as routing does; a path outside base (a front-door rewrite)
// is left as it is. The front door's r keeps the full path, for the access
// log.
func stripRequest(r *pipeline.Request, base string) *pipeline.Request {
	p, ok := cutPathPrefix(r.Path, base)
	if !ok {
		return r
	}
	c := new(pipeline.Request)
	*c = *r
	c.Path = p
	c.Header.Set("X-Forwarded-Prefix", base)
	return c
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
