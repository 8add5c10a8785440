package webconfig

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// rewrite reads <system.webServer><rewrite> into p.app.Rewrite. Inbound
// <rules> (with <serverVariables> for request headers), <rewriteMaps> and
// the <outboundRules> on response headers and on the response body
// (filterByTags) are read; custom tags, <providers> and the setting of
// other server variables are recorded in App.Unsupported. The rules are checked as
// written; their patterns, server variables and functions are checked
// where they are compiled (package rewrite, when the app's stages are
// built), with the file and line too.
func (p *parser) rewrite(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	if p.app.Rewrite == nil {
		p.app.Rewrite = &config.Rewrite{}
	}
	rw := p.app.Rewrite
	p.rewriteRead = true
	err := p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "rules":
			return p.fromSource(t, se, func(p *parser, t token, se xml.StartElement) error { return p.rewriteRules(t, se, &rw.Rules) })
		case "rewriteMaps":
			return p.fromSource(t, se, func(p *parser, t token, se xml.StartElement) error { return p.rewriteMaps(t, se, &rw.Maps) })
		case "outboundRules":
			return p.fromSource(t, se, func(p *parser, t token, se xml.StartElement) error { return p.outboundRules(t, se, rw) })
		case "providers":
			p.unsupported(t.line, se.Name.Local, "URL Rewrite providers are not supported; the rules apply")
			return p.skip()
		case "globalRules", "allowedServerVariables":
			return p.errorf(t.line, se.Name.Local, "", "allowed only at server level (put global rules in the file the site config's globalRules names)")
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <rewrite> (known: rules, rewriteMaps, outboundRules, providers)")
	})
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("%d rules, %d maps", len(rw.Rules), len(rw.Maps))
	body := 0
	for _, r := range rw.Outbound {
		if r.Match.ServerVariable == "" {
			body++
		}
	}
	if n := len(rw.Outbound) - body; n > 0 {
		summary += fmt.Sprintf(", %d outbound header rules", n)
	}
	if body > 0 {
		summary += fmt.Sprintf(", %d outbound body rules", body)
	}
	p.applied("rewrite", summary)
	return nil
}

// outboundRules reads <outboundRules>: the rules on a response header
// (match serverVariable) or on the response body (match filterByTags) and
// the preconditions go into rw; custom tags (<customTags>, filterByTags
// CustomTags) are recorded in App.Unsupported.
func (p *parser) outboundRules(t token, se xml.StartElement, rw *config.Rewrite) error {
	if _, err := p.attrs(t, se, "rewriteBeforeCache"); err != nil {
		return err
	}
	names := map[string]int{}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "rule":
			r, enabled, body, err := p.outboundRule(t, se)
			if err != nil {
				return err
			}
			if err := p.uniqueRule(t, names, r.Name); err != nil {
				return err
			}
			switch {
			case body && len(r.Match.FilterByTags) == 0:
				p.unsupported(t.line, "outboundRules/rule", fmt.Sprintf("rule %q rewrites the response body in custom tags only (filterByTags CustomTags): not supported, NOT applied", r.Name))
			case enabled:
				rw.Outbound = append(rw.Outbound, r)
			}
			return nil
		case "preConditions":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			return p.children(func(t token, se xml.StartElement) error {
				if se.Name.Local != "preCondition" {
					return p.errorf(t.line, se.Name.Local, "", "unknown element in <preConditions> (known: preCondition)")
				}
				pc, err := p.preCondition(t, se)
				if err != nil {
					return err
				}
				for _, prev := range rw.PreConditions {
					if strings.EqualFold(prev.Name, pc.Name) {
						return p.errorf(t.line, "preCondition", "name", "%q is used twice (first on line %d)", pc.Name, prev.Line)
					}
				}
				rw.PreConditions = append(rw.PreConditions, pc)
				return nil
			})
		case "customTags":
			return p.skipUnsupported(t, "outboundRules/customTags", "not supported: only rules on response headers apply")
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <outboundRules> (known: rule, preConditions, customTags)")
	})
}

// outboundRule reads one <outboundRules><rule>; enabled is its enabled
// attribute, body whether it rewrites the response body (no
// serverVariable).
func (p *parser) outboundRule(t token, se xml.StartElement) (r config.OutboundRule, enabled, body bool, err error) {
	attrs, err := p.attrs(t, se, "name", "enabled", "patternSyntax", "stopProcessing", "preCondition")
	if err != nil {
		return r, false, false, err
	}
	r.File, r.Line, r.PreCondition = p.file, t.line, attrs["preCondition"].Value
	if r.Name = attrs["name"].Value; r.Name == "" {
		return r, false, false, p.errorf(t.line, "rule", "name", "required attribute is missing or empty")
	}
	b := p.boolAttrs(t, "rule", attrs)
	enabled = b.get("enabled", true)
	r.StopProcessing = b.get("stopProcessing", false)
	if err := b.err(); err != nil {
		return r, false, false, err
	}
	if r.PatternSyntax, err = p.enumAttr(t, "rule", "patternSyntax", attrs, "ECMAScript", "ECMAScript", "Wildcard", "ExactMatch"); err != nil {
		return r, false, false, err
	}
	sawMatch := false
	r.Action = config.OutboundAction{Line: t.line, Type: "None", Replace: true}
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "match":
			sawMatch = true
			attrs, err := p.attrs(t, se, "serverVariable", "filterByTags", "customTags", "pattern", "ignoreCase", "negate")
			if err != nil {
				return err
			}
			m := &r.Match
			m.Line, m.ServerVariable, m.Pattern = t.line, attrs["serverVariable"].Value, attrs["pattern"].Value
			body = m.ServerVariable == ""
			if body {
				if m.FilterByTags, err = p.filterByTags(t, attrs["filterByTags"].Value); err != nil {
					return err
				}
			}
			b := p.boolAttrs(t, "match", attrs)
			m.IgnoreCase = b.get("ignoreCase", true)
			m.Negate = b.get("negate", false)
			if err := b.err(); err != nil {
				return err
			}
			if up := strings.ToUpper(m.ServerVariable); !body && (!strings.HasPrefix(up, "RESPONSE_") || up == "RESPONSE_") {
				return p.errorf(p.attrLine(t, "serverVariable"), "match", "serverVariable", "%q is not a response header (RESPONSE_Name)", m.ServerVariable)
			}
			return p.skip()
		case "conditions":
			return p.rewriteConditions(t, se, &r.Conditions)
		case "action":
			attrs, err := p.attrs(t, se, "type", "value", "replace")
			if err != nil {
				return err
			}
			a := &r.Action
			a.Line, a.Value = t.line, attrs["value"].Value
			if a.Type, err = p.enumAttr(t, "action", "type", attrs, "None", "None", "Rewrite"); err != nil {
				return err
			}
			b := p.boolAttrs(t, "action", attrs)
			a.Replace = b.get("replace", true)
			if err := b.err(); err != nil {
				return err
			}
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <rule> (known: match, conditions, action)")
	})
	if err != nil {
		return r, false, false, err
	}
	if !sawMatch {
		return r, false, false, p.errorf(t.line, "rule", "", "rule %q has no <match>", r.Name)
	}
	return r, enabled, body, nil
}

// bodyTags are the values of filterByTags that Gatehouse rewrites, by
// lower-cased name.
var bodyTags = map[string]string{"a": "A", "area": "Area", "base": "Base", "form": "Form", "frame": "Frame", "head": "Head",
	"iframe": "IFrame", "img": "Img", "input": "Input", "link": "Link", "script": "Script"}

// filterByTags reads the filterByTags of a rule on the response body: a
// comma-separated list of IIS's tag names. CustomTags is recorded as not
// carried out.
func (p *parser) filterByTags(t token, v string) ([]string, error) {
	var tags []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.EqualFold(s, "CustomTags") {
			p.unsupportedAttr(t, "match", "filterByTags", "CustomTags are not supported: the rule applies to the standard tags it names")
			continue
		}
		tag, ok := bodyTags[strings.ToLower(s)]
		if !ok {
			return nil, p.errorf(p.attrLine(t, "filterByTags"), "match", "filterByTags", "%q is not a tag IIS filters (A, Area, Base, Form, Frame, Head, IFrame, Img, Input, Link, Script, CustomTags)", s)
		}
		tags = append(tags, tag)
	}
	if len(tags) == 0 && !strings.Contains(strings.ToLower(v), "customtags") {
		return nil, p.errorf(t.line, "match", "filterByTags", "a rule on the response body needs filterByTags (or a serverVariable for a header)")
	}
	return tags, nil
}

// preCondition reads one <preCondition>.
func (p *parser) preCondition(t token, se xml.StartElement) (config.RewritePreCondition, error) {
	attrs, err := p.attrs(t, se, "name", "logicalGrouping", "patternSyntax")
	if err != nil {
		return config.RewritePreCondition{}, err
	}
	pc := config.RewritePreCondition{Line: t.line, Name: attrs["name"].Value}
	if pc.Name == "" {
		return pc, p.errorf(t.line, "preCondition", "name", "required attribute is missing or empty")
	}
	g, err := p.enumAttr(t, "preCondition", "logicalGrouping", attrs, "MatchAll", "MatchAll", "MatchAny")
	if err != nil {
		return pc, err
	}
	pc.MatchAny = g == "MatchAny"
	if pc.PatternSyntax, err = p.enumAttr(t, "preCondition", "patternSyntax", attrs, "ECMAScript", "ECMAScript", "Wildcard", "ExactMatch"); err != nil {
		return pc, err
	}
	err = p.children(func(t token, se xml.StartElement) error {
		if se.Name.Local != "add" {
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <preCondition> (known: add)")
		}
		attrs, err := p.attrs(t, se, "input", "pattern", "ignoreCase", "negate")
		if err != nil {
			return err
		}
		in, ok := attrs["input"]
		if !ok {
			return p.errorf(t.line, "add", "input", "required attribute of a precondition is missing")
		}
		cond := config.RewriteCondition{Line: t.line, Input: in.Value, MatchType: "Pattern", Pattern: attrs["pattern"].Value}
		b := p.boolAttrs(t, "add", attrs)
		cond.IgnoreCase = b.get("ignoreCase", true)
		cond.Negate = b.get("negate", false)
		if err := b.err(); err != nil {
			return err
		}
		pc.List = append(pc.List, cond)
		return p.skip()
	})
	return pc, err
}

// uniqueRule refuses a rule named as an earlier one in names (by
// lower-cased name, with its line), and records it.
func (p *parser) uniqueRule(t token, names map[string]int, name string) error {
	key := strings.ToLower(name)
	if first, dup := names[key]; dup {
		return p.errorf(t.line, "rule", "name", "%q is used twice (first on line %d; names are case-insensitive)", name, first)
	}
	names[key] = t.line
	return nil
}

// rewriteRules reads <rules> (or <globalRules>) into rules.
func (p *parser) rewriteRules(t token, se xml.StartElement, rules *[]config.RewriteRule) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	names := map[string]int{}
	for _, r := range *rules {
		names[strings.ToLower(r.Name)] = r.Line
	}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			*rules, names = nil, map[string]int{}
			return p.skip()
		case "remove":
			attrs, err := p.attrs(t, se, "name")
			if err != nil {
				return err
			}
			name := strings.ToLower(attrs["name"].Value)
			out := (*rules)[:0]
			for _, r := range *rules {
				if strings.ToLower(r.Name) != name {
					out = append(out, r)
				}
			}
			*rules = out
			delete(names, name)
			return p.skip()
		case "rule":
			r, enabled, err := p.rewriteRule(t, se)
			if err != nil {
				return err
			}
			if err := p.uniqueRule(t, names, r.Name); err != nil {
				return err
			}
			if enabled {
				*rules = append(*rules, r)
			}
			return nil
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <%s> (known: rule, clear, remove)", "rules")
	})
}

var ruleAttrs = []string{"name", "enabled", "patternSyntax", "stopProcessing", "logRewrittenUrl", "responseCacheDirective"}

// rewriteRule reads one <rule>; enabled is its enabled attribute.
func (p *parser) rewriteRule(t token, se xml.StartElement) (r config.RewriteRule, enabled bool, err error) {
	attrs, err := p.attrs(t, se, ruleAttrs...)
	if err != nil {
		return r, false, err
	}
	r.File, r.Line, r.Base = p.file, t.line, p.loc.path
	name, ok := attrs["name"]
	if !ok || name.Value == "" {
		return r, false, p.errorf(t.line, "rule", "name", "required attribute is missing or empty")
	}
	r.Name = name.Value
	b := p.boolAttrs(t, "rule", attrs)
	enabled = b.get("enabled", true)
	r.StopProcessing = b.get("stopProcessing", false)
	b.get("logRewrittenUrl", false)
	if err := b.err(); err != nil {
		return r, false, err
	}
	if r.PatternSyntax, err = p.enumAttr(t, "rule", "patternSyntax", attrs, "ECMAScript", "ECMAScript", "Wildcard", "ExactMatch"); err != nil {
		return r, false, err
	}
	if _, err := p.enumAttr(t, "rule", "responseCacheDirective", attrs, "Auto", "Auto", "Always", "Never", "NotIfRuleMatched"); err != nil {
		return r, false, err
	}
	var sawMatch, sawAction bool
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "match":
			sawMatch = true
			return p.rewriteMatch(t, se, &r.Match)
		case "conditions":
			return p.rewriteConditions(t, se, &r.Conditions)
		case "action":
			sawAction = true
			return p.rewriteAction(t, se, &r.Action)
		case "serverVariables":
			return p.serverVariables(t, se, &r)
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <rule> (known: match, conditions, serverVariables, action)")
	})
	if err != nil {
		return r, false, err
	}
	switch {
	case !sawMatch:
		return r, false, p.errorf(t.line, "rule", "", "rule %q has no <match>", r.Name)
	case !sawAction:
		r.Action = config.RewriteAction{Line: t.line, Type: "None", AppendQueryString: true}
	}
	return r, enabled, nil
}

// serverVariables reads a rule's <serverVariables>: <set> of request
// headers (HTTP_*) is kept; other server variables are recorded in
// App.Unsupported.
func (p *parser) serverVariables(t token, se xml.StartElement, r *config.RewriteRule) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		if se.Name.Local != "set" {
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <serverVariables> (known: set)")
		}
		attrs, err := p.attrs(t, se, "name", "value", "replace")
		if err != nil {
			return err
		}
		s := config.RewriteSet{Line: t.line, Name: attrs["name"].Value, Value: attrs["value"].Value}
		if s.Name == "" {
			return p.errorf(t.line, "set", "name", "required attribute is missing or empty")
		}
		b := p.boolAttrs(t, "set", attrs)
		s.Replace = b.get("replace", true)
		if err := b.err(); err != nil {
			return err
		}
		if up := strings.ToUpper(s.Name); !strings.HasPrefix(up, "HTTP_") || up == "HTTP_" {
			p.unsupported(t.line, "set", fmt.Sprintf("rule %q: server variable %s: only request headers (HTTP_*) can be set; the rule's action still applies", r.Name, s.Name))
			return p.skip()
		}
		r.ServerVariables = append(r.ServerVariables, s)
		return p.skip()
	})
}

func (p *parser) rewriteMatch(t token, se xml.StartElement, m *config.RewriteMatch) error {
	attrs, err := p.attrs(t, se, "url", "ignoreCase", "negate")
	if err != nil {
		return err
	}
	m.Line = t.line
	url, ok := attrs["url"]
	if !ok {
		return p.errorf(t.line, "match", "url", "required attribute is missing")
	}
	m.URL = url.Value
	b := p.boolAttrs(t, "match", attrs)
	m.IgnoreCase = b.get("ignoreCase", true)
	m.Negate = b.get("negate", false)
	if err := b.err(); err != nil {
		return err
	}
	return p.skip()
}

func (p *parser) rewriteConditions(t token, se xml.StartElement, c *config.RewriteConditions) error {
	attrs, err := p.attrs(t, se, "logicalGrouping", "trackAllCaptures")
	if err != nil {
		return err
	}
	c.Line = t.line
	g, err := p.enumAttr(t, "conditions", "logicalGrouping", attrs, "MatchAll", "MatchAll", "MatchAny")
	if err != nil {
		return err
	}
	c.MatchAny = g == "MatchAny"
	b := p.boolAttrs(t, "conditions", attrs)
	c.TrackAllCaptures = b.get("trackAllCaptures", false)
	if err := b.err(); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			c.List = nil
			return p.skip()
		case "add":
			attrs, err := p.attrs(t, se, "input", "matchType", "pattern", "ignoreCase", "negate")
			if err != nil {
				return err
			}
			cond := config.RewriteCondition{Line: t.line, Pattern: attrs["pattern"].Value}
			in, ok := attrs["input"]
			if !ok {
				return p.errorf(t.line, "add", "input", "required attribute of a condition is missing")
			}
			cond.Input = in.Value
			if cond.MatchType, err = p.enumAttr(t, "add", "matchType", attrs, "Pattern", "Pattern", "IsFile", "IsDirectory"); err != nil {
				return err
			}
			b := p.boolAttrs(t, "add", attrs)
			cond.IgnoreCase = b.get("ignoreCase", true)
			cond.Negate = b.get("negate", false)
			if err := b.err(); err != nil {
				return err
			}
			c.List = append(c.List, cond)
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <conditions> (known: add, clear)")
	})
}

var actionAttrs = []string{"type", "url", "appendQueryString", "redirectType", "statusCode", "subStatusCode", "statusReason", "statusDescription", "logRewrittenUrl"}

// redirectTypes maps redirectType names (and httpResponseStatus names) to
// statuses. PermanentRedirect (308) is a Gatehouse extension for
// redirectType; IIS 10 has it for httpResponseStatus.
var redirectTypes = map[string]int{
	"permanent": 301, "found": 302, "seeother": 303, "temporary": 307, "permanentredirect": 308,
}

func (p *parser) rewriteAction(t token, se xml.StartElement, a *config.RewriteAction) error {
	attrs, err := p.attrs(t, se, actionAttrs...)
	if err != nil {
		return err
	}
	*a = config.RewriteAction{Line: t.line, URL: attrs["url"].Value, StatusReason: attrs["statusReason"].Value, StatusDescription: attrs["statusDescription"].Value}
	if a.Type, err = p.enumAttr(t, "action", "type", attrs, "None", "None", "Rewrite", "Redirect", "CustomResponse", "AbortRequest"); err != nil {
		return err
	}
	b := p.boolAttrs(t, "action", attrs)
	a.AppendQueryString = b.get("appendQueryString", true)
	b.get("logRewrittenUrl", false)
	if err := b.err(); err != nil {
		return err
	}
	a.RedirectType = 301
	if v, ok := attrs["redirectType"]; ok {
		if a.RedirectType, err = p.status(t, "action", "redirectType", v.Value, "Permanent, Found, SeeOther, Temporary, PermanentRedirect"); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		name string
		dst  *int
	}{{"statusCode", &a.StatusCode}, {"subStatusCode", &a.SubStatusCode}} {
		v, ok := attrs[n.name]
		if !ok {
			continue
		}
		x, err := strconv.ParseUint(v.Value, 10, 16)
		if err != nil {
			return p.errorf(p.attrLine(t, n.name), "action", n.name, "%q is not a whole number", v.Value)
		}
		*n.dst = int(x)
	}
	if a.Type == "CustomResponse" {
		if _, ok := attrs["statusCode"]; !ok {
			return p.errorf(t.line, "action", "statusCode", "required for a CustomResponse action")
		}
	}
	return p.skip()
}

// status reads a redirect status given by name or number.
func (p *parser) status(t token, element, attr, v, names string) (int, error) {
	if n, ok := redirectTypes[strings.ToLower(v)]; ok {
		return n, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		switch n {
		case 301, 302, 303, 307, 308:
			return n, nil
		}
	}
	return 0, p.errorf(p.attrLine(t, attr), element, attr, "%q is not a redirect type (%s, or 301, 302, 303, 307, 308)", v, names)
}

func (p *parser) rewriteMaps(t token, se xml.StartElement, maps *[]config.RewriteMap) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		if se.Name.Local != "rewriteMap" {
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <rewriteMaps> (known: rewriteMap)")
		}
		attrs, err := p.attrs(t, se, "name", "defaultValue", "ignoreCase")
		if err != nil {
			return err
		}
		m := config.RewriteMap{File: p.file, Line: t.line, Name: attrs["name"].Value, DefaultValue: attrs["defaultValue"].Value}
		b := p.boolAttrs(t, "rewriteMap", attrs)
		m.IgnoreCase = b.get("ignoreCase", true)
		if err := b.err(); err != nil {
			return err
		}
		err = p.children(func(t token, se xml.StartElement) error {
			switch se.Name.Local {
			case "add":
				attrs, err := p.attrs(t, se, "key", "value")
				if err != nil {
					return err
				}
				if _, ok := attrs["key"]; !ok {
					return p.errorf(t.line, "add", "key", "required attribute of a map entry is missing")
				}
				m.Entries = append(m.Entries, config.RewriteMapEntry{Line: t.line, Key: attrs["key"].Value, Value: attrs["value"].Value})
				return p.skip()
			case "clear":
				m.Entries = nil
				return p.skip()
			}
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <rewriteMap> (known: add, clear)")
		})
		if err != nil {
			return err
		}
		*maps = append(*maps, m)
		return nil
	})
}

// httpRedirect reads <system.webServer><httpRedirect>, of the app or of
// the <location path> being read, into p.app.HTTPRedirects.
func (p *parser) httpRedirect(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "enabled", "destination", "exactDestination", "childOnly", "httpResponseStatus")
	if err != nil {
		return err
	}
	for _, prev := range p.app.HTTPRedirects {
		if strings.EqualFold(prev.Path, p.loc.path) {
			return p.errorf(t.line, "httpRedirect", "", "second <httpRedirect> for the same path (the first is on line %d)", prev.Line)
		}
	}
	h := config.HTTPRedirect{File: p.file, Line: t.line, Path: p.loc.path, Destination: strings.TrimSpace(attrs["destination"].Value), Status: 302, Given: map[string]bool{}}
	for name := range attrs {
		h.Given[name] = true
	}
	b := p.boolAttrs(t, "httpRedirect", attrs)
	h.Enabled = b.get("enabled", false)
	h.ExactDestination = b.get("exactDestination", false)
	h.ChildOnly = b.get("childOnly", false)
	if err := b.err(); err != nil {
		return err
	}
	if v, ok := attrs["httpResponseStatus"]; ok {
		if h.Status, err = p.status(t, "httpRedirect", "httpResponseStatus", v.Value, "Permanent, Found, Temporary, PermanentRedirect"); err != nil {
			return err
		}
	}
	err = p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			h.Wildcards = nil
			h.Given["wildcards"] = true
			return p.skip()
		case "add":
			attrs, err := p.attrs(t, se, "wildcard", "destination")
			if err != nil {
				return err
			}
			if attrs["wildcard"].Value == "" {
				return p.errorf(t.line, "add", "wildcard", "required attribute is missing or empty")
			}
			h.Wildcards = append(h.Wildcards, config.HTTPRedirectWildcard{Line: t.line, Wildcard: attrs["wildcard"].Value, Destination: attrs["destination"].Value})
			h.Given["wildcards"] = true
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <httpRedirect> (known: add, clear)")
	})
	if err != nil {
		return err
	}
	if h.Path == "" && h.Enabled && h.Destination == "" && len(h.Wildcards) == 0 {
		return p.errorf(t.line, "httpRedirect", "destination", "required when enabled is true")
	}
	p.app.HTTPRedirects = append(p.app.HTTPRedirects, h)
	switch {
	case h.Path != "":
		p.applied("httpRedirect", fmt.Sprintf("in <location path=%q>", h.Path))
	case h.Enabled:
		p.applied("httpRedirect", fmt.Sprintf("%d to %s", h.Status, h.Destination))
	}
	return nil
}

// boolReader reads IIS bool attributes of one element, remembering the
// first bad value.
type boolReader struct {
	p       *parser
	t       token
	element string
	attrs   map[string]xml.Attr
	first   error
}

func (p *parser) boolAttrs(t token, element string, attrs map[string]xml.Attr) *boolReader {
	return &boolReader{p: p, t: t, element: element, attrs: attrs}
}

// get returns attribute name as a bool, def when it is absent.
func (b *boolReader) get(name string, def bool) bool {
	a, ok := b.attrs[name]
	if !ok {
		return def
	}
	v, err := parseBool(a.Value)
	if err != nil {
		if b.first == nil {
			b.first = b.p.errorf(b.p.attrLine(b.t, name), b.element, name, "%q is not true or false", a.Value)
		}
		return def
	}
	return v
}

// err returns the first bad value's error.
func (b *boolReader) err() error { return b.first }

// enumAttr returns attribute name of element, matched without regard to
// case against values and returned in their spelling; def when absent.
func (p *parser) enumAttr(t token, element, name string, attrs map[string]xml.Attr, def string, values ...string) (string, error) {
	a, ok := attrs[name]
	if !ok {
		return def, nil
	}
	for _, v := range values {
		if strings.EqualFold(a.Value, v) {
			return v, nil
		}
	}
	return "", p.errorf(p.attrLine(t, name), element, name, "%q is not one of %s", a.Value, strings.Join(values, ", "))
}

// unsupported records an element Gatehouse reads but does not carry out.
func (p *parser) unsupported(line int, element, why string) {
	p.app.Unsupported = append(p.app.Unsupported, fmt.Sprintf("%s:%d: <%s>: %s", p.file, line, element, why))
}

// applied records a <system.webServer> section that was applied.
func (p *parser) applied(name, summary string) {
	p.app.Sections = append(p.app.Sections, name+" ("+summary+")")
}
