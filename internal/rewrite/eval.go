package rewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Action is what the rules decided.
type Action uint8

const (
	// None: no rule changed the request; it goes on as it came.
	None Action = iota
	// Rewrite: the request goes on with Outcome.Path and Outcome.Query.
	Rewrite
	// Redirect: answer Outcome.Status with Location Outcome.Location.
	Redirect
	// CustomResponse: answer Outcome.Status (and SubStatus) with
	// Outcome.Reason and Outcome.Description.
	CustomResponse
	// Abort: close the connection (HTTP/2: reset the stream) without an answer.
	Abort
)

func (a Action) String() string {
	switch a {
	case None:
		return "None"
	case Rewrite:
		return "Rewrite"
	case Redirect:
		return "Redirect"
	case CustomResponse:
		return "CustomResponse"
	case Abort:
		return "AbortRequest"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Outcome is the result of Evaluate.
type Outcome struct {
	Action Action
	// Rule names the rule that decided (for Rewrite, the last one that
	// rewrote); "" for None.
	Rule string
	// Path and Query are the rewritten request (Action Rewrite): the path
	// %-encoded, site-relative, with its leading slash (it may lie in
	// another virtual app), the query raw without "?".
	Path, Query string
	// Upstream, for Action Rewrite, is the other server ("host:port", one
	// of Options.Upstreams) the request goes to over http instead of the
	// app; "" for the app.
	Upstream string
	// Location is the redirect target (Action Redirect).
	Location string
	// Status is the redirect status (301, 302, 303, 307, 308) or the custom
	// response's status code; SubStatus is the custom response's IIS
	// substatus.
	Status, SubStatus int
	// Reason and Description are the custom response's statusReason and
	// statusDescription, expanded. They may carry request text: escape them.
	Reason, Description string
	// SetHeaders are the request headers the matched rules' <serverVariables>
	// set (name, value), in order, for Action None and Rewrite: the caller
	// sets them on the request it passes on. Values hold no control
	// characters.
	SetHeaders [][2]string
}

// Evaluate runs the rules against in. The error is a regular-expression
// match that exceeded its timeout, or a rewrite to another server; the
// Outcome is then None and the request should fail (500).
//
// Evaluate never touches in beyond reading it, and only stats files for
// IsFile/IsDirectory conditions.
func (rs *RuleSet) Evaluate(in *Input) (Outcome, error) {
	out := Outcome{}
	if rs == nil || len(rs.rules) == 0 {
		return out, nil
	}
	e := evaluation{rs: rs, in: in, path: in.Path, query: in.Query, fileBase: rs.appPath, dir: rs.dir}
	if rs.global {
		e.fileBase, e.dir = cleanAppPath(in.AppPath), filepath.Clean(in.AppDir)
		if in.AppDir == "" {
			e.dir = ""
		}
	}
	for i := range rs.rules {
		r := &rs.rules[i]
		url, inApp := e.appRelative()
		if !inApp {
			// An earlier rule rewrote the URL into another app: its rules
			// are that app's business.
			break
		}
		e.base = r.base
		if r.base != "" {
			// A rule of a <location path>: for a URL below that path only,
			// which its pattern sees relative to it.
			if url, inApp = e.below(r.base); !inApp {
				continue
			}
		}
		caps, ok, err := r.match.match(url)
		if err != nil {
			return Outcome{}, fmt.Errorf("rule %q: match %q: %w", r.name, url, err)
		}
		if !ok {
			continue
		}
		e.r, e.c = caps, nil
		ok, err = e.conditions(r)
		if err != nil {
			return Outcome{}, fmt.Errorf("rule %q: %w", r.name, err)
		}
		if !ok {
			continue
		}
		for i := range r.sets {
			hs := &r.sets[i]
			if !hs.replace && e.header(hs.name) != "" {
				continue
			}
			e.sets = append(e.sets, [2]string{hs.name, headerValue(string(hs.value.expand(nil, &e)))})
		}
		a := &r.action
		switch a.kind {
		case None:
		case Rewrite:
			if err := e.rewrite(a); err != nil {
				return Outcome{}, fmt.Errorf("rule %q: %w", r.name, err)
			}
			out = Outcome{Action: Rewrite, Rule: r.name, Path: e.path, Query: e.query, Upstream: e.upstream}
		case Redirect:
			return Outcome{Action: Redirect, Rule: r.name, Status: a.status, Location: e.location(a)}, nil
		case CustomResponse:
			return Outcome{
				Action: CustomResponse, Rule: r.name, Status: a.status, SubStatus: a.subStatus,
				Reason:      string(a.reason.expand(nil, &e)),
				Description: string(a.description.expand(nil, &e)),
			}, nil
		case Abort:
			return Outcome{Action: Abort, Rule: r.name}, nil
		}
		if r.stop || e.upstream != "" {
			break // an upstream: the request leaves for another server, whose URL no rule of this one matches
		}
	}
	out.SetHeaders = e.sets
	return out, nil
}

// header returns request header name as the rules see it: the last value a
// rule set, else the request's.
func (e *evaluation) header(name string) string {
	for i := len(e.sets) - 1; i >= 0; i-- {
		if strings.EqualFold(e.sets[i][0], name) {
			return e.sets[i][1]
		}
	}
	if e.in.Header != nil {
		return e.in.Header.Get(name)
	}
	return ""
}

// headerValue drops the control characters (CR, LF, NUL…) a back-reference
// may carry from a decoded URL, so a value set cannot split the header.
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= ' ' && c != 0x7f || c == '\t' {
			b = append(b, c)
		}
	}
	return string(b)
}

// conditions evaluates r's conditions with e.r set, leaving e.c as the
// captures an action sees.
func (e *evaluation) conditions(r *rule) (bool, error) {
	if len(r.conds) == 0 {
		return true, nil
	}
	var buf []byte
	for i := range r.conds {
		c := &r.conds[i]
		var in string
		in, buf = e.inputString(c.input, buf)
		caps, ok, err := e.test(c, in)
		if err != nil {
			return false, err
		}
		if ok && caps != nil {
			if r.trackAll {
				e.c = append(e.c[:len(e.c):len(e.c)], caps...)
			} else {
				e.c = caps
			}
		}
		switch {
		case ok && r.matchAny:
			return true, nil
		case !ok && !r.matchAny:
			return false, nil
		}
	}
	return !r.matchAny, nil
}

// inputString expands t, in buf if it must be built; the common inputs,
// a literal and {REQUEST_FILENAME}, cost nothing.
func (e *evaluation) inputString(t template, buf []byte) (string, []byte) {
	if len(t) == 1 {
		switch s := &t[0]; {
		case s.kind == segLiteral:
			return s.lit, buf
		case s.kind == segVar:
			if v, ok := e.variableString(s.v); ok {
				return v, buf
			}
		}
	}
	buf = t.expand(buf[:0], e)
	return string(buf), buf
}

// test applies condition c to the expanded input s.
func (e *evaluation) test(c *condition, s string) ([]string, bool, error) {
	switch c.kind {
	case condIsFile, condIsDirectory:
		hit := false
		p, ok := s, s != "" && s == e.fileName // already mapped into the folder
		if !ok {
			p, ok = e.inDir(s)
		}
		if ok {
			if fi := e.stat(p); fi != nil {
				hit = c.kind == condIsFile && fi.Mode().IsRegular() || c.kind == condIsDirectory && fi.IsDir()
			}
		}
		return nil, hit != c.negate, nil
	}
	caps, ok, err := c.m.match(s)
	if err != nil {
		return nil, false, fmt.Errorf("condition on %q: %w", s, err)
	}
	return caps, ok, nil
}

// stat returns os.Stat(p), or nil if it fails, remembering the last
// answer: IsFile and IsDirectory conditions usually test the same path.
func (e *evaluation) stat(p string) os.FileInfo {
	if p != e.statPath {
		e.statPath, e.statInfo = p, nil
		if fi, err := os.Stat(p); err == nil {
			e.statInfo = fi
		}
	}
	return e.statInfo
}

// resolve expands a substitution URL and makes a relative one
// site-relative (against the app path). It returns the URL and whether it
// is absolute (scheme://…). A '\' before the query is a '/', as IIS reads
// it (and browsers read it in a Location): the Blazor WebAssembly publish
// template rewrites to "wwwroot\{R:0}".
func (e *evaluation) resolve(a *action) (string, bool) {
	s := backslashes(string(a.url.expand(nil, e)))
	if hasScheme(s) {
		return s, true
	}
	if strings.HasPrefix(s, "/") {
		return s, false
	}
	base := e.rs.appPath
	if e.base != "" {
		base = e.base
	}
	if base == "/" {
		return "/" + s, false
	}
	return base + "/" + s, false
}

// backslashes returns s with each '\' before the first '?' made a '/'.
func backslashes(s string) string {
	end := strings.IndexByte(s, '?')
	if end < 0 {
		end = len(s)
	}
	if strings.IndexByte(s[:end], '\\') < 0 {
		return s
	}
	return strings.ReplaceAll(s[:end], `\`, "/") + s[end:]
}

// rewrite applies a Rewrite action to e.path and e.query.
func (e *evaluation) rewrite(a *action) error {
	s, abs := e.resolve(a)
	if abs {
		rest := s[strings.Index(s, "://")+3:]
		host, p := rest, "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			host, p = rest[:i], rest[i:]
		}
		if !strings.EqualFold(host, e.in.Host) {
			if err := checkUpstream(s, e.rs.upstreams); err != nil {
				return fmt.Errorf("rewrite to %q: %w", s, err)
			}
			_, e.upstream = upstreamOf(s)
		}
		if p[0] == '?' {
			p = "/" + p
		}
		s = p
	}
	p, q, hasQuery := strings.Cut(s, "?")
	switch {
	case hasQuery && a.appendQuery && e.query != "":
		q = q + "&" + e.query
	case !hasQuery && a.appendQuery:
		q = e.query
	}
	// Cleaned as the front door cleans a client's path, so the next rule
	// matches the path the app would get.
	e.path = pipeline.CleanPath(collapseSlashes(escapeURL(p)))
	e.query = escapeURL(q)
	return nil
}

// location expands a Redirect action into its Location.
func (e *evaluation) location(a *action) string {
	s, _ := e.resolve(a)
	if a.appendQuery && e.query != "" {
		if strings.Contains(s, "?") {
			s += "&" + e.query
		} else {
			s += "?" + e.query
		}
	}
	return escapeURL(s)
}
