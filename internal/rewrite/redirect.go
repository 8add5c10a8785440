package rewrite

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Redirector is a compiled <httpRedirect> (the IIS HTTP Redirection
// module): every request for the app is sent elsewhere. It is immutable; a
// nil *Redirector redirects nothing.
//
//   - With exactDestination="false" (the default) the request's path below
//     the app and its query string are appended to destination: for an app
//     at /shop redirected to https://new.example.com/store, /shop/a/b?x=1
//     goes to https://new.example.com/store/a/b?x=1.
//   - With exactDestination="true" destination is sent as written, with $S
//     (the path below the app, with its leading slash), $V (the request
//     path), $Q (the query string with its "?", or "") and $P (the query
//     string without "?") replaced.
//   - childOnly="true" redirects only requests for content directly in the
//     app folder ("/shop/a"), not in its subfolders ("/shop/a/b").
//   - An <add wildcard destination> whose wildcard ("*" is any run of
//     characters, case ignored) matches the path below the app, or the whole
//     request path, sends that request to its destination, as an exact one.
//
// A request already inside a site-relative destination is not redirected
// again (IIS would loop forever).
type Redirector struct {
	appPath   string
	dest      string
	exact     bool
	childOnly bool
	status    int
	wildcards []config.HTTPRedirectWildcard
}

// CompileRedirect checks spec for the app at appPath. A nil spec, or one
// with Enabled false, gives a nil *Redirector.
func CompileRedirect(spec *config.HTTPRedirect, appPath string) (*Redirector, error) {
	if spec == nil || !spec.Enabled {
		return nil, nil
	}
	switch spec.Status {
	case 301, 302, 307, 308:
	default:
		return nil, &Error{Line: spec.Line, Element: "httpRedirect", Attr: "httpResponseStatus", Msg: fmt.Sprintf("%d is not 301, 302, 307 or 308", spec.Status)}
	}
	if spec.Destination == "" && len(spec.Wildcards) == 0 {
		return nil, &Error{Line: spec.Line, Element: "httpRedirect", Attr: "destination", Msg: "required when enabled is true"}
	}
	return &Redirector{
		appPath: cleanAppPath(appPath), dest: spec.Destination, exact: spec.ExactDestination,
		childOnly: spec.ChildOnly, status: spec.Status, wildcards: spec.Wildcards,
	}, nil
}

// Evaluate returns the redirect for in (Action Redirect, Status, Location),
// or an Outcome with Action None.
func (h *Redirector) Evaluate(in *Input) Outcome {
	if h == nil {
		return Outcome{}
	}
	rel, ok := below(in.Path, h.appPath)
	if !ok || h.childOnly && strings.Contains(rel, "/") {
		return Outcome{}
	}
	dest, exact := h.dest, h.exact
	for _, w := range h.wildcards {
		if globMatch(w.Wildcard, rel) || globMatch(w.Wildcard, in.Path) {
			dest, exact = w.Destination, true
			break
		}
	}
	if dest == "" {
		return Outcome{}
	}
	var loc string
	if exact {
		q := ""
		if in.Query != "" {
			q = "?" + in.Query
		}
		suffix := ""
		if rel != "" {
			suffix = "/" + rel
		}
		loc = strings.NewReplacer("$S", suffix, "$V", in.Path, "$Q", q, "$P", in.Query).Replace(dest)
	} else {
		loc = dest
		if rel != "" {
			loc = strings.TrimRight(dest, "/") + "/" + rel
		}
		if in.Query != "" {
			loc += "?" + in.Query
		}
	}
	if loops(dest, in.Path, loc) {
		return Outcome{}
	}
	return Outcome{Action: Redirect, Rule: "httpRedirect", Status: h.status, Location: escapeURL(loc)}
}

// loops reports whether redirecting the request for path to loc would
// come back: loc is the request itself, or dest is site-relative and the
// request is already inside its fixed part ("/new" of "/new/$S").
func loops(dest, path, loc string) bool {
	if locPath, _, _ := strings.Cut(loc, "?"); locPath == path {
		return true
	}
	if !strings.HasPrefix(dest, "/") || strings.HasPrefix(dest, "//") {
		return false
	}
	fixed := dest
	if i := strings.IndexAny(fixed, "$?"); i >= 0 {
		fixed = fixed[:i]
	}
	fixed = strings.TrimRight(fixed, "/")
	if fixed == "" {
		return false
	}
	_, inside := below(path, fixed)
	return inside
}

// below returns p below the app path base (raw, without the leading
// slash); ok is false when p is outside it. The comparison ignores case.
func below(p, base string) (string, bool) {
	if base == "/" || base == "" {
		return strings.TrimPrefix(p, "/"), true
	}
	rest, ok := cutPrefixFold(p, base)
	if !ok || rest != "" && rest[0] != '/' {
		return "", false
	}
	return strings.TrimPrefix(rest, "/"), true
}

// globMatch matches s against pattern, where "*" is any run of characters,
// without regard to case. It runs in O(len(pattern)·len(s)) at worst.
func globMatch(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case star >= 0:
			px, mark = star+1, mark+1
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
