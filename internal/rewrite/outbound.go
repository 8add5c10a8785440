package rewrite

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Outbound is a compiled <outboundRules> on response headers (URL Rewrite
// 2.0). Each rule reads one response header (match serverVariable
// "RESPONSE_X_Frame_Options" is X-Frame-Options, "" when the response has
// none), matches its pattern against the value, tests its conditions,
// which may read the request's variables and the response's
// ({RESPONSE_Content_Type}, {RESPONSE_STATUS}), and with a Rewrite action
// sets the header to its value, expanded with {R:n} of the match and
// {C:n} of the conditions. An empty value removes the header. A rule with
// a preCondition runs only when the response passes it. stopProcessing
// ends the evaluation after that rule's action. Rules on the response
// body (filterByTags) are run by Body and the HTML rewriter instead.
//
// An Outbound is immutable and safe for concurrent use; a nil *Outbound
// has no rules.
type Outbound struct {
	rules []outRule
	base  RuleSet // appPath and dir, for the request's variables
}

// outRule is a compiled outbound rule. Its embedded rule holds the name,
// stopProcessing, the match on the header's value and the conditions.
type outRule struct {
	rule
	header string // the response header, as it is sent when added; "" for a body rule
	// attrs, for a rule on the response body, are the attributes it
	// rewrites, by lower-cased tag name (filterByTags).
	attrs   map[string][]string
	pre     *rule // the precondition's checks; nil for none
	rewrite bool
	value   template
	replace bool
}

// framingFields are response headers no rule may set: Gatehouse frames
// the response itself.
var framingFields = []string{"Connection", "Content-Length", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// CompileOutbound compiles spec's outbound rules and preconditions for the
// app opts describes (opts.Global is ignored: outbound rules exist only in
// an app's web.config). It returns nil when spec has no outbound rule. An
// error is an *Error naming the element concerned.
func CompileOutbound(spec *config.Rewrite, opts Options) (*Outbound, error) {
	if spec == nil || len(spec.Outbound) == 0 {
		return nil, nil
	}
	c, err := newCompiler(spec, opts)
	if err != nil {
		return nil, err
	}
	o := &Outbound{base: RuleSet{appPath: cleanAppPath(opts.AppPath), dir: opts.Dir}}
	pres := map[string]*rule{}
	for i := range spec.Outbound {
		r := &spec.Outbound[i]
		out, err := c.outRule(r, spec.PreConditions, pres)
		if err != nil {
			return nil, inFile(err, r.File)
		}
		o.rules = append(o.rules, out)
	}
	return o, nil
}

// matchTimeout returns the bound of one match for Options.MatchTimeout.
func matchTimeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultMatchTimeout
	case d < 0:
		return 0
	}
	return d
}

func (c *compiler) outRule(r *config.OutboundRule, preConds []config.RewritePreCondition, pres map[string]*rule) (outRule, error) {
	bad := func(line int, element, attr string, err error) error {
		return &Error{Line: line, Element: element, Attr: attr, Msg: err.Error(), Err: err}
	}
	out := outRule{rule: rule{name: r.Name, stop: r.StopProcessing, matchAny: r.Conditions.MatchAny, trackAll: r.Conditions.TrackAllCaptures}}
	if r.Match.ServerVariable == "" {
		out.attrs = map[string][]string{}
		for _, tag := range r.Match.FilterByTags {
			t := strings.ToLower(tag)
			out.attrs[t] = tagAttrs[t]
		}
	} else {
		name, err := responseField(r.Match.ServerVariable)
		if err != nil {
			return outRule{}, bad(r.Match.Line, "match", "serverVariable", err)
		}
		out.header = name
	}
	var err error
	if r.Match.Pattern == "" && r.PatternSyntax != "ExactMatch" {
		return outRule{}, bad(r.Match.Line, "match", "pattern", fmt.Errorf("required"))
	}
	if out.match, err = compilePattern(r.Match.Pattern, r.PatternSyntax, r.Match.IgnoreCase, r.Match.Negate, c.timeout); err != nil {
		return outRule{}, bad(r.Match.Line, "match", "pattern", err)
	}
	out.match.budget = c.budget
	for i := range r.Conditions.List {
		cond, err := c.condition(&r.Conditions.List[i], r.PatternSyntax)
		if err != nil {
			return outRule{}, err
		}
		out.conds = append(out.conds, cond)
	}
	if r.PreCondition != "" {
		if out.pre, err = c.preCondition(r.PreCondition, preConds, pres); err != nil {
			return outRule{}, bad(r.Line, "rule", "preCondition", err)
		}
	}
	out.rewrite, out.replace = r.Action.Type == "Rewrite", r.Action.Replace
	if out.rewrite {
		if out.value, err = parseTemplate(r.Action.Value, c.maps); err != nil {
			return outRule{}, bad(r.Action.Line, "action", "value", err)
		}
	}
	out.match.noCaps = !out.value.usesRule()
	for _, cond := range out.conds {
		if cond.m != nil {
			cond.m.noCaps = !out.value.usesConditions()
		}
	}
	return out, nil
}

// preCondition returns the compiled precondition named name, compiling it
// on first use.
func (c *compiler) preCondition(name string, preConds []config.RewritePreCondition, pres map[string]*rule) (*rule, error) {
	key := strings.ToLower(name)
	if p, ok := pres[key]; ok {
		return p, nil
	}
	for i := range preConds {
		pc := &preConds[i]
		if !strings.EqualFold(pc.Name, name) {
			continue
		}
		p := &rule{name: pc.Name, matchAny: pc.MatchAny}
		for j := range pc.List {
			cond, err := c.condition(&pc.List[j], pc.PatternSyntax)
			if err != nil {
				return nil, err
			}
			cond.m.noCaps = true
			p.conds = append(p.conds, cond)
		}
		pres[key] = p
		return p, nil
	}
	return nil, fmt.Errorf("%q: no such preCondition in <outboundRules><preConditions>", name)
}

// responseField returns the header a RESPONSE_* server variable names:
// RESPONSE_X_Frame_Options is X-Frame-Options, as written; one written all
// in capitals (RESPONSE_X_FRAME_OPTIONS) gets the usual spelling.
func responseField(v string) (string, error) {
	if len(v) <= len("RESPONSE_") || !strings.EqualFold(v[:len("RESPONSE_")], "RESPONSE_") {
		return "", fmt.Errorf("%q is not a response header (RESPONSE_Name)", v)
	}
	rest := v[len("RESPONSE_"):]
	name := strings.ReplaceAll(rest, "_", "-")
	if rest == strings.ToUpper(rest) {
		name = headerName(rest)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return "", fmt.Errorf("%q: %q is not a header name", v, name)
	}
	for _, f := range framingFields {
		if strings.EqualFold(f, name) {
			return "", fmt.Errorf("%q: Gatehouse frames the response itself; %s cannot be rewritten", v, f)
		}
	}
	return name, nil
}

// Len returns the number of rules in o.
func (o *Outbound) Len() int {
	if o == nil {
		return 0
	}
	return len(o.rules)
}

// Apply runs the rules over the response header h of status, for the
// request in. The error is a regular-expression match that exceeded its
// timeout; the rules before it have been applied, the rest are not.
func (o *Outbound) Apply(in *Input, status int, h pipeline.Header) error {
	if o == nil {
		return nil
	}
	e := evaluation{rs: &o.base, in: in, path: in.Path, query: in.Query, fileBase: o.base.appPath, dir: o.base.dir, resp: h, status: status}
	for i := range o.rules {
		r := &o.rules[i]
		if r.attrs != nil {
			continue // a rule on the body (Body)
		}
		if r.pre != nil {
			e.r, e.c = nil, nil
			ok, err := e.conditions(r.pre)
			if err != nil {
				return fmt.Errorf("outbound rule %q: preCondition %q: %w", r.name, r.pre.name, err)
			}
			if !ok {
				continue
			}
		}
		value := h.Get(r.header)
		caps, ok, err := r.match.match(value)
		if err != nil {
			return fmt.Errorf("outbound rule %q: match %q: %w", r.name, value, err)
		}
		if !ok {
			continue
		}
		e.r, e.c = caps, nil
		if ok, err = e.conditions(&r.rule); err != nil {
			return fmt.Errorf("outbound rule %q: %w", r.name, err)
		}
		if !ok {
			continue
		}
		if r.rewrite && (r.replace || value == "") {
			setResponseField(h, r.header, headerValue(string(r.value.expand(nil, &e))))
		}
		if r.stop {
			break
		}
	}
	return nil
}

// setResponseField sets header name of h to v, keeping the spelling of a
// field already there (the app's "Server" stays "Server" whatever case
// the rule writes); an empty v removes the field.
func setResponseField(h pipeline.Header, name, v string) {
	if v == "" {
		h.Del(name)
		return
	}
	h.Range(func(k, _ string) bool {
		if strings.EqualFold(k, name) {
			name = k
			return false
		}
		return true
	})
	h.Set(name, v)
}
