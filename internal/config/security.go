package config

// Security is <system.webServer><security><authentication> and
// <authorization> as one scope of a web.config writes them: the file's own
// level (Path "") or a <location path="…"> inside it. Pointer fields are nil
// when the scope does not set them, so the enclosing scope (or the site's
// default) applies. The effective settings of a request path are the
// scopes that contain it merged from the outermost in (see package auth).
type Security struct {
	// Path is the scope's path relative to the app, without leading or
	// trailing slash ("admin", "admin/reports"); "" is the whole app.
	// Matched segment-wise and without regard to case, as IIS does.
	Path string
	// Line is the line of the <location> element, 0 for the file's level.
	Line int

	// Anonymous (anonymousAuthentication@enabled; IIS default true):
	// requests without credentials are let in as anonymous.
	Anonymous *bool
	// Windows (windowsAuthentication@enabled; IIS default false):
	// Negotiate (Kerberos) authentication.
	Windows *bool
	// Basic (basicAuthentication@enabled; IIS default false): Basic
	// authentication against the site's user file.
	Basic *bool
	// BasicRealm (basicAuthentication@realm; default "" = the request's
	// host name) is the realm the Basic challenge names.
	BasicRealm *string

	// Authorization is the scope's <authorization> collection; nil when
	// the scope has none.
	Authorization *AuthzCollection
}

// AuthzCollection is one <authorization> element: its <clear/>, <remove>
// and <add> entries, applied to the inherited rules in that order of
// appearance (IIS collection semantics).
type AuthzCollection struct {
	// Ops are the entries in file order.
	Ops []AuthzOp
}

// AuthzOp is one <clear/>, <remove> or <add> entry of <authorization>.
type AuthzOp struct {
	// Kind is "clear", "remove" or "add".
	Kind string
	// Rule is the rule added or removed; zero for "clear". A <remove>
	// matches an inherited rule with the same Users, Roles and Verbs (the
	// collection's key), compared without regard to case or order.
	Rule AuthzRule
}

// AuthzRule is one URL Authorization rule (<add accessType users roles verbs>).
type AuthzRule struct {
	// Allow is accessType="Allow"; false is "Deny".
	Allow bool
	// Users lists user names, "*" (everyone, anonymous included) or "?"
	// (anonymous). Roles lists group names or SIDs. At least one of the two
	// is non-empty.
	Users, Roles []string
	// Verbs lists the methods the rule applies to; empty means every method.
	Verbs []string
	// File and Line say where the rule was written ("" and 0 for the
	// built-in allow-everyone rule).
	File string
	Line int
}

// Schemes are the authentication schemes in force for one path.
type Schemes struct {
	Anonymous, Windows, Basic bool
	// BasicRealm is the Basic challenge's realm ("" = the host name).
	BasicRealm string
}

// DefaultSchemes are IIS's defaults (applicationHost.config): anonymous on,
// Windows and Basic off.
var DefaultSchemes = Schemes{Anonymous: true}

// Apply returns s with what sc sets laid over it.
func (s Schemes) Apply(sc *Security) Schemes {
	if sc.Anonymous != nil {
		s.Anonymous = *sc.Anonymous
	}
	if sc.Windows != nil {
		s.Windows = *sc.Windows
	}
	if sc.Basic != nil {
		s.Basic = *sc.Basic
	}
	if sc.BasicRealm != nil {
		s.BasicRealm = *sc.BasicRealm
	}
	return s
}

// HTTPAuth returns ASPNETCORE_IIS_HTTPAUTH as ANCM writes it:
// "windows;", "basic;", "anonymous;" for each scheme on, in that order,
// or "none".
func (s Schemes) HTTPAuth() string {
	v := ""
	if s.Windows {
		v += "windows;"
	}
	if s.Basic {
		v += "basic;"
	}
	if s.Anonymous {
		v += "anonymous;"
	}
	if v == "" {
		return "none"
	}
	return v
}

// RootSchemes returns the schemes in force at the app's root: site (the
// site's defaults) with the file's own-level scopes laid over it.
func (a *App) RootSchemes(site Schemes) Schemes {
	for i := range a.Security {
		if a.Security[i].Path == "" {
			site = site.Apply(&a.Security[i])
		}
	}
	return site
}
