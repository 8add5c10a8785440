package webconfig

import (
	"encoding/xml"
	"fmt"
	"path"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// scope returns the config.Security of the scope being read (the file's
// level, or the <location path="…"> p.loc), creating it on first use.
func (p *parser) scope() *config.Security {
	for i := range p.app.Security {
		s := &p.app.Security[i]
		if s.Path == p.loc.path && s.Line == p.loc.line {
			return s
		}
	}
	p.app.Security = append(p.app.Security, config.Security{Path: p.loc.path, Line: p.loc.line})
	return &p.app.Security[len(p.app.Security)-1]
}

// locationPath turns <location path="…"> into a path relative to the app:
// backslashes become slashes, leading and trailing slashes go; "." and ""
// are the app itself (""). Dot-dot segments and wildcards are errors.
func locationPath(v string) (string, string) {
	v = strings.Trim(strings.ReplaceAll(strings.TrimSpace(v), `\`, "/"), "/")
	if v == "." || v == "" {
		return "", ""
	}
	for seg := range strings.SplitSeq(v, "/") {
		switch {
		case seg == "..":
			return "", "must not leave the application (\"..\")"
		case seg == "" || seg == ".":
			return "", "has an empty or \".\" segment"
		case strings.ContainsAny(seg, "*?"):
			return "", "must be a literal path (no wildcards)"
		}
	}
	return path.Clean(v), ""
}

// subWebServer handles a child of <system.webServer> in a <location
// path="…"> for a sub-path: only <security><authentication>,
// <authorization> and <httpRedirect> are narrowed to a path; everything
// else there is recorded in App.Unsupported.
func (p *parser) subWebServer(t token, se xml.StartElement) error {
	const why = "not read in a <location> for a sub-path: only <security><authentication>, <authorization>, <requestFiltering>, <ipSecurity>, <dynamicIpSecurity>, <httpProtocol>, <urlCompression>, <httpErrors>, <rewrite> and <httpRedirect> apply to part of an app"
	switch se.Name.Local {
	case "httpRedirect":
		return p.httpRedirect(t, se)
	case "httpProtocol", "urlCompression", "httpErrors", "rewrite":
		p.markScoped()
		return p.skip()
	}
	if se.Name.Local != "security" {
		return p.skipUnsupported(t, se.Name.Local, why)
	}
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "authentication":
			return p.authentication(t, se)
		case "authorization":
			return p.authorization(t, se)
		case "requestFiltering", "ipSecurity", "dynamicIpSecurity":
			p.markScoped()
			return p.skip()
		}
		return p.skipUnsupported(t, "security/"+se.Name.Local, why)
	})
}

// markScoped records the <location path> being read as one with sections that
// readLocations reads on top of the app's.
func (p *parser) markScoped() {
	for _, s := range p.scoped {
		if strings.EqualFold(s.element, p.loc.path) {
			return
		}
	}
	p.scoped = append(p.scoped, position{line: p.loc.line, element: p.loc.path})
}

// scopedWebServer handles a child of <system.webServer> in the <location
// path> a readLocations parser reads: request filtering, IP restrictions,
// custom headers and URL compression (what else is there was read, or
// reported, by the first reading).
func (p *parser) scopedWebServer(t token, se xml.StartElement) error {
	switch se.Name.Local {
	case "httpProtocol":
		return p.httpProtocol(t, se)
	case "urlCompression":
		return p.urlCompression(t, se)
	case "httpErrors":
		return p.httpErrors(t, se)
	case "rewrite":
		return p.rewrite(t, se)
	case "security":
		if _, err := p.attrs(t, se); err != nil {
			return err
		}
		return p.children(func(t token, se xml.StartElement) error {
			if ok, err := p.scopedSecurity(t, se); ok {
				return err
			}
			return p.skip()
		})
	}
	return p.skip()
}

// authentication reads <security><authentication> into the current scope:
// anonymousAuthentication, windowsAuthentication (providers: Negotiate
// only), basicAuthentication. Other children (digestAuthentication,
// clientCertificateMappingAuthentication, iisClientCertificateMapping…)
// are errors, since the scheme would silently not exist.
func (p *parser) authentication(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se); err != nil {
		return err
	}
	sc := p.scope()
	defer func() { p.applied("security/authentication", p.where()+schemesSummary(sc)) }()
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "anonymousAuthentication":
			attrs, err := p.attrs(t, se, "enabled", "userName", "password", "logonMethod")
			if err != nil {
				return err
			}
			if sc.Anonymous, err = p.authBool(t, se, attrs, "enabled"); err != nil {
				return err
			}
			return p.skip()
		case "windowsAuthentication":
			attrs, err := p.attrs(t, se, "enabled", "authPersistNonNTLM", "authPersistSingleRequest", "useKernelMode", "useAppPoolCredentials", "authenticationUsePoolIdentity")
			if err != nil {
				return err
			}
			if sc.Windows, err = p.authBool(t, se, attrs, "enabled"); err != nil {
				return err
			}
			return p.windowsChildren()
		case "basicAuthentication":
			attrs, err := p.attrs(t, se, "enabled", "realm", "defaultLogonDomain", "logonMethod")
			if err != nil {
				return err
			}
			if sc.Basic, err = p.authBool(t, se, attrs, "enabled"); err != nil {
				return err
			}
			if a, ok := attrs["realm"]; ok {
				realm := a.Value
				if strings.ContainsAny(realm, "\"\\\r\n") {
					return p.errorf(p.attrLine(t, "realm"), se.Name.Local, "realm", "%q must not contain quotes, backslashes or line breaks", realm)
				}
				sc.BasicRealm = &realm
			}
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "authentication scheme not offered by Gatehouse (known: anonymousAuthentication, windowsAuthentication, basicAuthentication)")
	})
}

// windowsChildren reads <windowsAuthentication>'s <providers> and
// <extendedProtection>. Only the Negotiate provider exists: NTLM (and
// "Negotiate:Kerberos", the same thing here) is refused at load, because
// it would never be offered.
func (p *parser) windowsChildren() error {
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "extendedProtection":
			return p.skip()
		case "providers":
			return p.children(func(t token, se xml.StartElement) error {
				switch se.Name.Local {
				case "clear":
					return p.skip()
				case "add", "remove":
					attrs, err := p.attrs(t, se, "value")
					if err != nil {
						return err
					}
					v := strings.TrimSpace(attrs["value"].Value)
					if se.Name.Local == "add" && !strings.EqualFold(v, "Negotiate") && !strings.EqualFold(v, "Negotiate:Kerberos") {
						return p.errorf(p.attrLine(t, "value"), "add", "value", "provider %q is not offered: Gatehouse does Negotiate with Kerberos only (NTLM needs a domain controller to check each response; see \"NTLM is not offered\" in docs/authentication.md)", v)
					}
					return p.skip()
				}
				return p.errorf(t.line, se.Name.Local, "", "unknown element in <providers> (known: add, remove, clear)")
			})
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <windowsAuthentication> (known: providers, extendedProtection)")
	})
}

// authBool parses the bool attribute name, nil when absent.
func (p *parser) authBool(t token, se xml.StartElement, attrs map[string]xml.Attr, name string) (*bool, error) {
	a, ok := attrs[name]
	if !ok {
		return nil, nil
	}
	b, err := parseBool(strings.TrimSpace(a.Value))
	if err != nil {
		return nil, p.errorf(p.attrLine(t, name), se.Name.Local, name, "%q is not true or false", a.Value)
	}
	return &b, nil
}

// authorization reads <security><authorization> (IIS URL Authorization)
// into the current scope: <add accessType users roles verbs>, <remove
// users roles verbs>, <clear/>.
func (p *parser) authorization(t token, se xml.StartElement) error {
	if _, err := p.attrs(t, se, "bypassLoginPages"); err != nil {
		return err
	}
	sc := p.scope()
	if sc.Authorization == nil {
		sc.Authorization = &config.AuthzCollection{}
	}
	col := sc.Authorization
	defer func() {
		p.applied("security/authorization", fmt.Sprintf("%s%d entries, IIS order: deny rules first", p.where(), len(col.Ops)))
	}()
	return p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			col.Ops = append(col.Ops, config.AuthzOp{Kind: "clear"})
			return p.skip()
		case "add", "remove":
			allowed := []string{"users", "roles", "verbs"}
			if se.Name.Local == "add" {
				allowed = append([]string{"accessType"}, allowed...)
			}
			attrs, err := p.attrs(t, se, allowed...)
			if err != nil {
				return err
			}
			r := config.AuthzRule{File: p.file, Line: t.line,
				Users: splitList(attrs["users"].Value), Roles: splitList(attrs["roles"].Value), Verbs: splitList(attrs["verbs"].Value)}
			if len(r.Users) == 0 && len(r.Roles) == 0 {
				return p.errorf(t.line, se.Name.Local, "users", "set users or roles (or both); \"*\" is everyone, \"?\" is anonymous")
			}
			for i, v := range r.Verbs {
				r.Verbs[i] = strings.ToUpper(v)
			}
			if se.Name.Local == "add" {
				a, ok := attrs["accessType"]
				switch {
				case !ok:
					return p.errorf(t.line, "add", "accessType", "required attribute is missing (Allow or Deny)")
				case strings.EqualFold(strings.TrimSpace(a.Value), "Allow"):
					r.Allow = true
				case strings.EqualFold(strings.TrimSpace(a.Value), "Deny"):
				default:
					return p.errorf(p.attrLine(t, "accessType"), "add", "accessType", "%q is not Allow or Deny", a.Value)
				}
			}
			col.Ops = append(col.Ops, config.AuthzOp{Kind: se.Name.Local, Rule: r})
			return p.skip()
		}
		return p.errorf(t.line, se.Name.Local, "", "unknown element in <authorization> (known: add, remove, clear)")
	})
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty items.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// where names the scope being read for the check listing.
func (p *parser) where() string {
	if p.loc.path == "" {
		return ""
	}
	return "location " + p.loc.path + ": "
}

// schemesSummary says what a scope turns on or off.
func schemesSummary(sc *config.Security) string {
	var parts []string
	for _, x := range []struct {
		name string
		v    *bool
	}{{"anonymous", sc.Anonymous}, {"windows", sc.Windows}, {"basic", sc.Basic}} {
		if x.v != nil {
			parts = append(parts, fmt.Sprintf("%s %s", x.name, map[bool]string{true: "on", false: "off"}[*x.v]))
		}
	}
	if len(parts) == 0 {
		return "nothing set"
	}
	return strings.Join(parts, ", ")
}
