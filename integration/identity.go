package integration

import (
	"net/http"
	"net/url"
	"strings"
)

// The identity headers Gatehouse sets for an authenticated request (see
// Gatehouse's docs/authentication.md, "What the app receives"). Values are percent-encoded
// UTF-8; Groups is comma-separated.
const (
	HeaderUser     = "MS-ASPNETCORE-USER"
	HeaderAuthType = "MS-ASPNETCORE-AUTHTYPE"
	HeaderGroups   = "MS-ASPNETCORE-GROUPS"
	// HeaderGroupSIDs lists the SIDs of the Windows groups (Negotiate
	// with an Active Directory ticket), comma-separated.
	HeaderGroupSIDs = "MS-ASPNETCORE-GROUPSIDS"
)

// User is the caller Gatehouse authenticated in front of the app.
type User struct {
	// Name is "DOMAIN\alice" for Negotiate with an Active Directory
	// ticket (or as the site's userNameFormat says), "alice@EXAMPLE.COM"
	// for other Kerberos tickets, the user name for Basic.
	Name string
	// AuthType is "Negotiate" or "Basic".
	AuthType string
	// Groups are group names (DOMAIN\Group; the SID of a Windows group
	// the directory could not name) and the group file's names, as
	// Gatehouse found them; nil when none.
	Groups []string
	// GroupSIDs are the SIDs of the Windows groups; nil when none.
	GroupSIDs []string
}

// InGroup reports whether u is in group g, compared without regard to
// case. A nil User is in no group.
func (u *User) InGroup(g string) bool {
	if u == nil {
		return false
	}
	for _, x := range u.Groups {
		if strings.EqualFold(x, g) {
			return true
		}
	}
	return false
}

// UserFrom returns the user [Middleware] found on r, or nil for an
// anonymous request, a request that did not pass through a Middleware, or
// a Middleware with no token configured: the identity headers are only
// believed on a request that proved it came from the module.
func UserFrom(r *http.Request) *User {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info.user
	}
	return nil
}

// takeUser removes the identity headers from h and, when trusted, decodes
// them. A name that does not decode gives nil.
func takeUser(h http.Header, trusted bool) *User {
	name, scheme, groups, sids := h.Get(HeaderUser), h.Get(HeaderAuthType), h.Get(HeaderGroups), h.Get(HeaderGroupSIDs)
	h.Del(HeaderUser)
	h.Del(HeaderAuthType)
	h.Del(HeaderGroups)
	h.Del(HeaderGroupSIDs)
	if !trusted || name == "" {
		return nil
	}
	n, err := url.PathUnescape(name)
	if err != nil {
		return nil
	}
	u := &User{Name: n, AuthType: scheme}
	for g := range strings.SplitSeq(groups, ",") {
		if g, err := url.PathUnescape(strings.TrimSpace(g)); err == nil && g != "" {
			u.Groups = append(u.Groups, g)
		}
	}
	for g := range strings.SplitSeq(sids, ",") {
		if g = strings.TrimSpace(g); g != "" {
			u.GroupSIDs = append(u.GroupSIDs, g)
		}
	}
	return u
}
