package auth

import (
	"encoding/base64"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// stageName names the stage in refusal log lines.
const stageName = "authentication"

// Stage is the authentication and authorization stage of one app: on the
// way in it finds who is calling (Serve), on the way out it adds the
// challenges to 401 responses and the mutual-authentication token to the
// others (Respond). It is immutable; a web.config change builds a new one
// over the same Provider.
type Stage struct {
	pol *Policy
	p   *Provider
}

// NewStage returns the stage for pol, checking credentials with p. It
// calls p.Require for the schemes pol uses, so a missing keytab or a bad
// user file is an error here, when the app's configuration is loaded.
func NewStage(pol *Policy, p *Provider) (*Stage, error) {
	if err := p.Require(pol.Uses()); err != nil {
		return nil, err
	}
	return &Stage{pol: pol, p: p}, nil
}

// Serve authenticates r and checks the authorization rules. Credentials
// for a scheme that is on are checked and taken out of the request
// (Authorization is removed; the app gets the identity headers instead);
// credentials for other schemes (Bearer…) are left for the app. A
// Negotiate login holds for the later requests of the same connection
// (see persist); otherwise a request without credentials is anonymous if
// the path allows it. NTLM credentials are refused where Windows
// authentication is on. Refusals are 401.1 (bad credentials, NTLM) and
// 401.2 (none, or the rules deny), with a challenge for each scheme on;
// the reason goes to the log only.
func (s *Stage) Serve(r *pipeline.Request) *pipeline.Result {
	sc := s.pol.For(relPath(r))
	scheme, cred := splitAuthorization(r.Header.Get("Authorization"))
	var id *pipeline.Identity
	var note string // why a Negotiate identity has no group names
	switch {
	case strings.EqualFold(scheme, "Negotiate") && sc.Schemes.Windows:
		r.Header.Del("Authorization")
		ip := ""
		if r.ClientIP.IsValid() {
			ip = r.ClientIP.String()
		}
		kid, err := s.p.neg.Load().accept(cred, ip)
		if err != nil {
			return s.refuse(r, sc, 1, "Negotiate: "+err.Error())
		}
		id, note = s.windowsIdentity(kid)
		if s.persist(r) {
			kept := *id
			kept.Reply = ""
			r.Conn.SetIdentity(pipeline.ScopeOf(r), &kept)
		}
	case strings.EqualFold(scheme, "NTLM") && sc.Schemes.Windows:
		// NTLM is not supported; answered as IIS answers a scheme it does
		// not offer, and never passed to the app.
		r.Header.Del("Authorization")
		return s.refuse(r, sc, 1, "NTLM offered: Gatehouse accepts Kerberos only (Negotiate); the client did not get or use a Kerberos ticket for this host")
	case strings.EqualFold(scheme, "Basic") && sc.Schemes.Basic:
		r.Header.Del("Authorization")
		if r.TLS == nil && !s.p.set.AllowCleartextBasic {
			return s.refuse(r, sc, 1, "Basic: credentials sent over cleartext http are refused (site config authentication.allowCleartextBasic)")
		}
		user, ok := s.basic(cred)
		if !ok {
			return s.refuse(r, sc, 1, "Basic: wrong user name or password for "+quote(user))
		}
		id = &pipeline.Identity{Name: user, Scheme: "Basic", Groups: s.p.groupsOf(user)}
	default:
		if sc.Schemes.Windows && s.persist(r) {
			id = r.Conn.Identity(pipeline.ScopeOf(r)) // authenticated earlier on this connection, for this app
		}
		if id == nil && !sc.Schemes.Anonymous {
			return s.refuse(r, sc, 2, "anonymous access is off and the request has no credentials for an enabled scheme")
		}
	}
	if ok, why := sc.Authorize(id, r.Method); !ok {
		if note != "" {
			why += "; " + note
		}
		return s.refuse(r, sc, 2, "URL authorization: "+why)
	}
	r.Identity = id
	return nil
}

// persist reports whether a Negotiate login is kept for r's connection
// (IIS's authPersistNonNTLM, on by default): the front door keeps
// connection state, the site allows it, and the peer is the client itself
// (a request relayed by a trusted proxy may share its connection with
// other users' requests).
func (s *Stage) persist(r *pipeline.Request) bool {
	if r.Conn == nil || s.p.set.NoPersist {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap() == r.ClientIP
}

// basic checks "Basic <b64(user:password)>" credentials.
func (s *Stage) basic(cred string) (user string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", false
	}
	user, pass, found := strings.Cut(string(raw), ":")
	if !found || !utf8.ValidString(user) {
		return "", false
	}
	u := s.p.users.Load()
	if u == nil {
		return user, false
	}
	return user, u.check(user, pass)
}

// refuse answers 401.sub with the scope's challenges.
func (s *Stage) refuse(r *pipeline.Request, sc *Scope, sub int, reason string) *pipeline.Result {
	res := pipeline.Refuse(stageName, 401, sub, reason)
	for _, c := range s.challenges(r, sc) {
		res.Header = append(res.Header, [2]string{"WWW-Authenticate", c})
	}
	return res
}

// challenges are the WWW-Authenticate values for the schemes on at sc:
// Negotiate, and Basic where Basic credentials would be accepted.
func (s *Stage) challenges(r *pipeline.Request, sc *Scope) []string {
	var out []string
	if sc.Schemes.Windows {
		out = append(out, "Negotiate")
	}
	if sc.Schemes.Basic && (r.TLS != nil || s.p.set.AllowCleartextBasic) {
		realm := sc.Schemes.BasicRealm
		if realm == "" {
			realm = hostOnly(r.Host)
		}
		out = append(out, `Basic realm=`+quote(realm)+`, charset="UTF-8"`)
	}
	return out
}

// Respond adds, to a 401 from the app, a challenge for each scheme on
// that the response does not already carry (IIS does the same, which is
// how an app's [Authorize] triggers the browser's login); and to any
// other response of a request authenticated with mutual authentication,
// the server's Negotiate token.
func (s *Stage) Respond(r *pipeline.Request, status int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	if status == 401 {
		for _, c := range s.challenges(r, s.pol.For(relPath(r))) {
			name, _, _ := strings.Cut(c, " ")
			if !hasChallenge(h, name) {
				h.Add("WWW-Authenticate", c)
			}
		}
		return nil
	}
	if r.Identity != nil && r.Identity.Reply != "" && !hasChallenge(h, "Negotiate") {
		h.Add("WWW-Authenticate", r.Identity.Reply)
	}
	return nil
}

// hasChallenge reports whether h has a WWW-Authenticate for scheme.
func hasChallenge(h pipeline.Header, scheme string) bool {
	found := false
	h.Values("WWW-Authenticate", func(v string) bool {
		name, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		found = strings.EqualFold(name, scheme)
		return !found
	})
	return found
}

// relPath is r's path relative to its application.
func relPath(r *pipeline.Request) string {
	p := r.Path
	if ap := r.AppPath; ap != "" && ap != "/" && len(p) >= len(ap) && strings.EqualFold(p[:len(ap)], ap) {
		p = p[len(ap):]
	}
	return p
}

// splitAuthorization splits "Scheme credentials".
func splitAuthorization(v string) (scheme, cred string) {
	scheme, cred, _ = strings.Cut(strings.TrimSpace(v), " ")
	return scheme, strings.TrimSpace(cred)
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// quote returns s as an HTTP quoted-string, dropping the characters a
// header value cannot hold.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
