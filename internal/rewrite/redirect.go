package rewrite

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Redirector is the compiled <httpRedirect> sections of an app (the IIS
// HTTP Redirection module): requests are sent elsewhere. It is immutable;
// a nil *Redirector redirects nothing.
//
//   - With exactDestination="false" (the default) the request's path below
//     the section's location and its query string are appended to
//     destination: for an app at /shop redirected to
//     https://new.example.com/store, /shop/a/b?x=1 goes to
//     https://new.example.com/store/a/b?x=1.
//   - With exactDestination="true" destination is sent as written, with $S
//     (the path below the location, with its leading slash), $V (the
//     request path), $Q (the query string with its "?", or "") and $P (the
//     query string without "?") replaced.
//   - childOnly="true" redirects only requests for content directly in the
//     location's folder ("/shop/a"), not in its subfolders ("/shop/a/b").
//   - An <add wildcard destination> whose wildcard ("*" is any run of
//     characters, case ignored) matches the path below the location, or the
//     whole request path, sends that request to its destination, as an
//     exact one.
//   - A <location path> section applies to that path and below, instead of
//     the app's; it takes the attributes it does not write from the app's
//     (so <httpRedirect enabled="false" /> keeps a folder out of an app-wide
//     redirect).
//
// A request already inside a site-relative destination is not redirected
// again (IIS would loop).
type Redirector struct {
	appPath string
	scopes  []redirectScope // most specific location first
}

type redirectScope struct {
	path      string // below the app, no leading slash; "" for the app
	enabled   bool
	dest      string
	exact     bool
	childOnly bool
	status    int
	wildcards []config.HTTPRedirectWildcard
}

// CompileRedirect checks the sections for the app at appPath. It gives a
// nil *Redirector when no section redirects anything.
func CompileRedirect(specs []config.HTTPRedirect, appPath string) (*Redirector, error) {
	var base config.HTTPRedirect
	for _, s := range specs {
		if s.Path == "" {
			base = s
		}
	}
	h := &Redirector{appPath: cleanAppPath(appPath)}
	active := false
	for _, s := range specs {
		if s.Path != "" {
			s = inherit(s, base)
		}
		switch s.Status {
		case 301, 302, 307, 308:
		default:
			return nil, &Error{File: s.File, Line: s.Line, Element: "httpRedirect", Attr: "httpResponseStatus", Msg: fmt.Sprintf("%d is not 301, 302, 307 or 308", s.Status)}
		}
		if s.Enabled && s.Destination == "" && len(s.Wildcards) == 0 {
			return nil, &Error{File: s.File, Line: s.Line, Element: "httpRedirect", Attr: "destination", Msg: "required when enabled is true"}
		}
		active = active || s.Enabled
		h.scopes = append(h.scopes, redirectScope{
			path: strings.Trim(s.Path, "/"), enabled: s.Enabled, dest: s.Destination, exact: s.ExactDestination,
			childOnly: s.ChildOnly, status: s.Status, wildcards: s.Wildcards,
		})
	}
	if !active {
		return nil, nil
	}
	sort.SliceStable(h.scopes, func(i, j int) bool { return len(h.scopes[i].path) > len(h.scopes[j].path) })
	return h, nil
}

// inherit fills the attributes s does not write from base.
func inherit(s, base config.HTTPRedirect) config.HTTPRedirect {
	if !s.Given["enabled"] {
		s.Enabled = base.Enabled
	}
	if !s.Given["destination"] {
		s.Destination = base.Destination
	}
	if !s.Given["exactDestination"] {
		s.ExactDestination = base.ExactDestination
	}
	if !s.Given["childOnly"] {
		s.ChildOnly = base.ChildOnly
	}
	if !s.Given["httpResponseStatus"] {
		s.Status = base.Status
		if s.Status == 0 {
			s.Status = 302
		}
	}
	if !s.Given["wildcards"] {
		s.Wildcards = base.Wildcards
	}
	return s
}

// Evaluate returns the redirect for in (Action Redirect, Status, Location),
// or an Outcome with Action None.
func (h *Redirector) Evaluate(in *Input) Outcome {
	if h == nil {
		return Outcome{}
	}
	inApp, ok := below(in.Path, h.appPath)
	if !ok {
		return Outcome{}
	}
	var sc *redirectScope
	var rel string
	for i := range h.scopes {
		if r, ok := below("/"+inApp, "/"+h.scopes[i].path); ok {
			sc, rel = &h.scopes[i], r
			break
		}
	}
	if sc == nil || !sc.enabled || sc.childOnly && strings.Contains(rel, "/") {
		return Outcome{}
	}
	dest, exact := sc.dest, sc.exact
	for _, w := range sc.wildcards {
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
		q, suffix := "", ""
		if in.Query != "" {
			q = "?" + in.Query
		}
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
	return Outcome{Action: Redirect, Rule: "httpRedirect", Status: sc.status, Location: escapeURL(loc)}
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
