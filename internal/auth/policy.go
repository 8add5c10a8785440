package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// allowEveryone is IIS's built-in rule (applicationHost.config):
// <add accessType="Allow" users="*" />.
var allowEveryone = config.AuthzRule{Allow: true, Users: []string{"*"}}

// Policy is the effective authentication schemes and authorization rules
// of every path of one app. It is immutable once built.
type Policy struct {
	// scopes are sorted by path, longest first, so the first match is the
	// narrowest scope containing a path; the last is the app's root ("").
	scopes []*Scope
}

// Scope is what applies to one path and everything under it.
type Scope struct {
	// Path is lower-cased, relative to the app, "" for the app's root.
	Path    string
	Schemes config.Schemes
	// Rules are the URL Authorization rules in force, parent's first.
	Rules []config.AuthzRule
}

// NewPolicy merges the file's scopes over the site's default schemes, as
// IIS merges configuration levels: a scope's attributes override its
// parent's; its <authorization> entries edit the inherited collection
// (<clear/> drops it, <remove> drops one rule, <add> appends).
func NewPolicy(site config.Schemes, secs []config.Security) *Policy {
	paths := []string{""}
	for i := range secs {
		p := strings.ToLower(secs[i].Path)
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	// Parents before children: fewer segments first.
	sort.SliceStable(paths, func(i, j int) bool { return depth(paths[i]) < depth(paths[j]) })
	built := map[string]*Scope{}
	pol := &Policy{}
	for _, p := range paths {
		var sc Scope
		if p == "" {
			sc = Scope{Schemes: site, Rules: []config.AuthzRule{allowEveryone}}
		} else {
			sc = *parentOf(built, p)
			sc.Rules = slices.Clone(sc.Rules)
		}
		sc.Path = p
		for i := range secs {
			if strings.ToLower(secs[i].Path) != p {
				continue
			}
			sc.Schemes = sc.Schemes.Apply(&secs[i])
			if col := secs[i].Authorization; col != nil {
				sc.Rules = applyOps(sc.Rules, col.Ops)
			}
		}
		built[p] = &sc
		pol.scopes = append(pol.scopes, &sc)
	}
	sort.SliceStable(pol.scopes, func(i, j int) bool { return len(pol.scopes[i].Path) > len(pol.scopes[j].Path) })
	return pol
}

func depth(p string) int {
	if p == "" {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// parentOf returns the nearest built scope containing p.
func parentOf(built map[string]*Scope, p string) *Scope {
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return built[""]
		}
		p = p[:i]
		if sc, ok := built[p]; ok {
			return sc
		}
	}
}

func applyOps(rules []config.AuthzRule, ops []config.AuthzOp) []config.AuthzRule {
	for _, op := range ops {
		switch op.Kind {
		case "clear":
			rules = nil
		case "remove":
			k := ruleKey(&op.Rule)
			rules = slices.DeleteFunc(rules, func(r config.AuthzRule) bool { return ruleKey(&r) == k })
		case "add":
			rules = append(rules, op.Rule)
		}
	}
	return rules
}

// ruleKey is the collection key of a rule (users, roles, verbs), without
// regard to case or order.
func ruleKey(r *config.AuthzRule) string {
	norm := func(l []string) string {
		l = slices.Clone(l)
		for i := range l {
			l[i] = strings.ToLower(l[i])
		}
		slices.Sort(l)
		return strings.Join(l, ",")
	}
	return norm(r.Users) + "|" + norm(r.Roles) + "|" + norm(r.Verbs)
}

// For returns the scope that applies to rel, the request's path relative
// to the app as the front door cleaned it (pipeline.CleanPath), matched
// decoded and segment-wise without regard to case.
func (p *Policy) For(rel string) *Scope {
	if len(p.scopes) == 1 {
		return p.scopes[0] // the app's root, the only scope
	}
	rel = cleanRel(rel)
	for _, sc := range p.scopes {
		if sc.Path == "" || rel == sc.Path || strings.HasPrefix(rel, sc.Path) && rel[len(sc.Path)] == '/' {
			return sc
		}
	}
	return p.scopes[len(p.scopes)-1]
}

// Trivial reports whether the policy lets everybody in anonymously
// everywhere with no scheme to offer, so no stage is needed.
func (p *Policy) Trivial() bool {
	for _, sc := range p.scopes {
		if !sc.Schemes.Anonymous || sc.Schemes.Windows || sc.Schemes.Basic {
			return false
		}
		if len(sc.Rules) != 1 || ruleKey(&sc.Rules[0]) != ruleKey(&allowEveryone) || !sc.Rules[0].Allow {
			return false
		}
	}
	return true
}

// Uses reports whether any scope turns Windows or Basic on.
func (p *Policy) Uses() (windows, basic bool) {
	for _, sc := range p.scopes {
		windows = windows || sc.Schemes.Windows
		basic = basic || sc.Schemes.Basic
	}
	return windows, basic
}

// cleanRel decodes rel (pipeline.DecodePath), lower-cases it and removes
// empty segments, so "/Admin//x/" and "admin/x" are the same path. Decoding
// makes no dot segment: the front door refuses a path whose decoded form
// has one.
func cleanRel(rel string) string {
	rel = strings.Trim(strings.ToLower(pipeline.DecodePath(rel)), "/")
	if !strings.Contains(rel, "//") {
		return rel // no empty segment inside: nothing to drop
	}
	segs := strings.FieldsFunc(rel, func(r rune) bool { return r == '/' })
	return strings.Join(segs, "/")
}

// Authorize evaluates the scope's rules for id (nil: anonymous) and
// method as IIS URL Authorization does: if any Deny rule matches the
// request is denied; else if any Allow rule matches it is allowed; else it
// is denied. reason says which rule decided, for the log.
func (sc *Scope) Authorize(id *pipeline.Identity, method string) (ok bool, reason string) {
	for i := range sc.Rules {
		if r := &sc.Rules[i]; !r.Allow && matches(r, id, method) {
			return false, "denied by the rule at " + where(r)
		}
	}
	for i := range sc.Rules {
		if r := &sc.Rules[i]; r.Allow && matches(r, id, method) {
			return true, ""
		}
	}
	return false, "no authorization rule allows " + who(id)
}

func where(r *config.AuthzRule) string {
	if r.File == "" {
		return "the site level"
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

func who(id *pipeline.Identity) string {
	if id == nil {
		return "anonymous"
	}
	return id.Name
}

// matches reports whether rule r applies to id and method: the verb is
// listed (or none is), and a user entry names the caller (by its name or
// one of its aliases) or a role entry names one of its groups (inRole).
func matches(r *config.AuthzRule, id *pipeline.Identity, method string) bool {
	if len(r.Verbs) > 0 && !slices.Contains(r.Verbs, strings.ToUpper(method)) {
		return false
	}
	for _, u := range r.Users {
		switch {
		case u == "*":
			return true
		case u == "?":
			if id == nil {
				return true
			}
		case id != nil && nameMatches(id.Name, u):
			return true
		case id != nil && slices.ContainsFunc(id.Aliases, func(a string) bool { return nameMatches(a, u) }):
			return true
		}
	}
	if id != nil {
		for _, role := range r.Roles {
			if inRole(id, role) {
				return true
			}
		}
	}
	return false
}

// nameMatches reports whether a rule's user entry names the user. A
// Kerberos name "alice@EXAMPLE.COM" is also written "EXAMPLE\alice" (the
// realm's first label, as a NetBIOS domain) or "EXAMPLE.COM\alice"; a
// plain "alice" names only a Basic user "alice", never a Kerberos one.
func nameMatches(name, entry string) bool {
	if strings.EqualFold(name, entry) {
		return true
	}
	user, realm, ok := strings.Cut(name, "@")
	if !ok {
		return false
	}
	dom, u, ok := strings.Cut(entry, `\`)
	if !ok || !strings.EqualFold(u, user) {
		return false
	}
	netbios, _, _ := strings.Cut(realm, ".")
	return strings.EqualFold(dom, realm) || strings.EqualFold(dom, netbios)
}
