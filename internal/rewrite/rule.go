package rewrite

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// rule is a compiled <rule>.
type rule struct {
	name string
	// base is the path the rule's pattern sees the URL below and its
	// relative URLs resolve against: the app's, or for a rule of a
	// <location path>, that path ("/blog/api"); "" for the app's.
	base     string
	stop     bool
	match    *matcher
	conds    []condition
	matchAny bool
	trackAll bool
	sets     []headerSet
	action   action
}

// headerSet is a compiled <serverVariables><set> of a request header.
type headerSet struct {
	name    string // canonical header name
	value   template
	replace bool
}

type condKind uint8

const (
	condPattern condKind = iota
	condIsFile
	condIsDirectory
)

type condition struct {
	input  template
	kind   condKind
	m      *matcher // condPattern
	negate bool     // condIsFile, condIsDirectory
}

// action is a compiled <action>.
type action struct {
	kind        Action
	url         template // Rewrite, Redirect
	appendQuery bool
	status      int // Redirect: 301…; CustomResponse: statusCode
	subStatus   int
	reason      template
	description template
}

func (c *compiler) rule(r *config.RewriteRule) (rule, error) {
	out := rule{name: r.Name, stop: r.StopProcessing, matchAny: r.Conditions.MatchAny, trackAll: r.Conditions.TrackAllCaptures}
	m, err := compilePattern(r.Match.URL, r.PatternSyntax, r.Match.IgnoreCase, r.Match.Negate, c.timeout)
	if err != nil {
		return rule{}, &Error{Line: r.Match.Line, Element: "match", Attr: "url", Msg: err.Error(), Err: err}
	}
	m.budget = c.budget
	out.match = m
	for i := range r.Conditions.List {
		cond, err := c.condition(&r.Conditions.List[i], r.PatternSyntax)
		if err != nil {
			return rule{}, err
		}
		out.conds = append(out.conds, cond)
	}
	for _, s := range r.ServerVariables {
		rest, ok := strings.CutPrefix(strings.ToUpper(s.Name), "HTTP_")
		if !ok || rest == "" {
			return rule{}, &Error{Line: s.Line, Element: "set", Attr: "name", Msg: fmt.Sprintf("%q: only request headers (HTTP_*) can be set", s.Name)}
		}
		v, err := parseTemplate(s.Value, c.maps)
		if err != nil {
			return rule{}, &Error{Line: s.Line, Element: "set", Attr: "value", Msg: err.Error(), Err: err}
		}
		out.sets = append(out.sets, headerSet{name: headerName(rest), value: v, replace: s.Replace})
	}
	a, err := c.action(&r.Action)
	if err != nil {
		return rule{}, err
	}
	out.action = a
	// Captures nobody refers to are not built.
	uses := []template{a.url, a.reason, a.description}
	for _, cond := range out.conds {
		uses = append(uses, cond.input)
	}
	for _, s := range out.sets {
		uses = append(uses, s.value)
	}
	needR, needC := false, false
	for _, t := range uses {
		needR, needC = needR || t.usesRule(), needC || t.usesConditions()
	}
	out.match.noCaps = !needR
	for _, cond := range out.conds {
		if cond.m != nil {
			cond.m.noCaps = !needC
		}
	}
	return out, nil
}

func (c *compiler) condition(cc *config.RewriteCondition, syntax string) (condition, error) {
	bad := func(attr string, err error) error {
		return &Error{Line: cc.Line, Element: "add", Attr: attr, Msg: err.Error(), Err: err}
	}
	in, err := parseTemplate(cc.Input, c.maps)
	if err != nil {
		return condition{}, bad("input", err)
	}
	cond := condition{input: in, negate: cc.Negate}
	switch cc.MatchType {
	case "", "Pattern":
		if cc.Pattern == "" && syntax != "ExactMatch" {
			return condition{}, bad("pattern", fmt.Errorf("required for matchType Pattern"))
		}
		m, err := compilePattern(cc.Pattern, syntax, cc.IgnoreCase, cc.Negate, c.timeout)
		if err != nil {
			return condition{}, bad("pattern", err)
		}
		m.budget = c.budget
		cond.m = m
	case "IsFile":
		cond.kind = condIsFile
	case "IsDirectory":
		cond.kind = condIsDirectory
	default:
		return condition{}, bad("matchType", fmt.Errorf("%q is not Pattern, IsFile or IsDirectory", cc.MatchType))
	}
	return cond, nil
}

func (c *compiler) action(a *config.RewriteAction) (action, error) {
	bad := func(attr string, err error) error {
		return &Error{Line: a.Line, Element: "action", Attr: attr, Msg: err.Error(), Err: err}
	}
	out := action{appendQuery: a.AppendQueryString}
	template := func(attr, s string) (template, error) {
		t, err := parseTemplate(s, c.maps)
		if err != nil {
			return nil, bad(attr, err)
		}
		return t, nil
	}
	var err error
	switch a.Type {
	case "", "None":
		out.kind = None
	case "Rewrite", "Redirect":
		out.kind = Rewrite
		if a.Type == "Redirect" {
			out.kind = Redirect
			out.status = a.RedirectType
			switch out.status {
			case 0:
				out.status = 301
			case 301, 302, 303, 307, 308:
			default:
				return action{}, bad("redirectType", fmt.Errorf("%d is not a redirect status (301, 302, 303, 307, 308)", a.RedirectType))
			}
		}
		if a.URL == "" {
			return action{}, bad("url", fmt.Errorf("required for a %s action", a.Type))
		}
		if out.url, err = template("url", a.URL); err != nil {
			return action{}, err
		}
		if out.kind == Rewrite && out.url.fixedHost() {
			if err := checkUpstream(out.url[0].lit, c.upstreams); err != nil {
				return action{}, bad("url", fmt.Errorf("%q: %w", a.URL, err))
			}
		}
	case "CustomResponse":
		out.kind = CustomResponse
		if a.StatusCode < 200 || a.StatusCode > 999 {
			return action{}, bad("statusCode", fmt.Errorf("%d is not a status code (200–999)", a.StatusCode))
		}
		if a.SubStatusCode < 0 || a.SubStatusCode > 999 {
			return action{}, bad("subStatusCode", fmt.Errorf("%d is out of range (0–999)", a.SubStatusCode))
		}
		out.status, out.subStatus = a.StatusCode, a.SubStatusCode
		if out.reason, err = template("statusReason", a.StatusReason); err != nil {
			return action{}, err
		}
		if out.description, err = template("statusDescription", a.StatusDescription); err != nil {
			return action{}, err
		}
	case "AbortRequest":
		out.kind = Abort
	default:
		return action{}, bad("type", fmt.Errorf("%q is not None, Rewrite, Redirect, CustomResponse or AbortRequest", a.Type))
	}
	return out, nil
}

// fixedHost reports whether t is an absolute URL whose host is written out
// ("http://backend/{R:1}"), which a rewrite can only reach through a
// reverse proxy. A host from a variable ("https://{HTTP_HOST}/…") is
// checked per request.
func (t template) fixedHost() bool {
	if len(t) == 0 || t[0].kind != segLiteral || !hasScheme(t[0].lit) {
		return false
	}
	rest := t[0].lit[strings.Index(t[0].lit, "://")+3:]
	return len(t) == 1 || strings.ContainsAny(rest, "/?")
}

// upstreamOf returns the scheme (lower case) and "host:port" (lower case,
// the scheme's port when none is written) of the absolute URL s.
func upstreamOf(s string) (scheme, hostport string) {
	i := strings.Index(s, "://")
	scheme, rest := strings.ToLower(s[:i]), s[i+3:]
	if j := strings.IndexAny(rest, "/?"); j >= 0 {
		rest = rest[:j]
	}
	hostport = strings.ToLower(rest)
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), port)
	}
	return scheme, hostport
}

// checkUpstream reports why a rewrite may not send a request to the server
// of the absolute URL s: it is not one of upstreams, or not reached over
// http (the forwarder speaks cleartext HTTP/1.1 only).
func checkUpstream(s string, upstreams []string) error {
	scheme, hostport := upstreamOf(s)
	if !slices.Contains(upstreams, hostport) {
		if len(upstreams) == 0 {
			return fmt.Errorf("a rewrite to another server (IIS Application Request Routing) goes only to the servers the site config's proxyUpstreams lists, and it lists none")
		}
		return fmt.Errorf("a rewrite to another server goes only to the site config's proxyUpstreams (%s), not to %s", strings.Join(upstreams, ", "), hostport)
	}
	if scheme != "http" {
		return fmt.Errorf("%s://: Gatehouse forwards to another server over http only", scheme)
	}
	return nil
}

// hasScheme reports whether s starts with "scheme://".
func hasScheme(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, c := range s[:i] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
