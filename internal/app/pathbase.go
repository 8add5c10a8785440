package app

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// stripPathBase returns w and r as the forwarder sees them when the app's
// virtual path base is stripped: "/api/x?y" is forwarded as "/x?y" ("/api"
// as "/"), and X-Forwarded-Prefix is base (what the client sent in that
// field is replaced). The prefix is matched without case, as routing does;
// a path outside base (a front-door rewrite) is left as it is. The front
// door's pipeline.Request is not changed (the access log keeps the full
// path); the forwarder finds a stripped copy through w.
func stripPathBase(w http.ResponseWriter, r *http.Request, base string) (http.ResponseWriter, *http.Request) {
	rest, ok := cutPathPrefix(r.URL.Path, base)
	if !ok {
		return w, r
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
	if pr := pipeline.RequestFrom(w); pr != nil {
		sw := &strippedWriter{ResponseWriter: w, pr: *pr}
		if p, ok := cutPathPrefix(pr.Path, base); ok {
			sw.pr.Path = p
		}
		sw.pr.Header = pipeline.HTTPHeader(r2.Header)
		w = sw
	}
	return w, r2
}

// stripRequest is stripPathBase for the lean path: a copy of r with the
// path below base, and X-Forwarded-Prefix set to base in r's header (the
// front door's r keeps the full path, for the access log).
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

// strippedWriter carries the stripped copy of the front door's request to
// the forwarder (pipeline.RequestFrom).
type strippedWriter struct {
	http.ResponseWriter
	pr pipeline.Request
}

// PipelineRequest returns the request with the path base stripped.
func (w *strippedWriter) PipelineRequest() *pipeline.Request { return &w.pr }

// Unwrap lets http.ResponseController and pipeline.SetSubstatus reach the
// front door's writer.
func (w *strippedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
