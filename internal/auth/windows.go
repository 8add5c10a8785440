package auth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/directory"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// windowsIdentity is the identity a Kerberos login gives, named as IIS
// names it. With an Active Directory PAC: the name as the site's
// userNameFormat says (DOMAIN\user by default) and the other forms as
// aliases; the PAC's group SIDs and the well-known SIDs every Windows
// token carries, each named where it can be (well-known names, then the
// directory), else left a SID; then the group file's groups. Without a
// PAC, the site's directory stands in for it when it holds the account
// (the realm is its domain): the groups come from nested membership
// there. Otherwise: the principal and the group file's groups, as before.
// note, when not "", says why group names are missing (for the log of a
// refusal).
func (s *Stage) windowsIdentity(kid *kerberosIdentity) (id *pipeline.Identity, note string) {
	id = &pipeline.Identity{Name: kid.name, Scheme: "Negotiate", Reply: kid.reply}
	li := kid.logon
	if dir := s.p.set.Directory; li == nil && dir != nil {
		acct, err := dir.Account(context.Background(), kid.name)
		switch {
		case err == nil:
			s.p.log.Debug("Kerberos ticket without a PAC: the account and its groups come from the directory", "user", kid.name)
			li = &logonInfo{domain: acct.Domain, user: acct.User, upn: acct.UPN, groups: acct.Groups}
		case !errors.Is(err, directory.ErrNoAccount):
			note = "the ticket has no PAC and the directory could not be asked for the groups (" + err.Error() + ")"
		}
	}
	if li == nil {
		id.Groups = s.p.groupsOf(kid.name)
		return id, note
	}
	var domainName string
	if li.domain != "" && li.user != "" {
		domainName = li.domain + `\` + li.user
	}
	switch f := s.p.set.UserNameFormat; {
	case f == NameUPN && li.upn != "":
		id.Name = li.upn
	case (f == "" || f == NameDomain) && domainName != "":
		id.Name = domainName
	}
	for _, n := range []string{kid.name, domainName, li.upn} {
		if n != "" && !strings.EqualFold(n, id.Name) && !slices.ContainsFunc(id.Aliases, func(a string) bool { return strings.EqualFold(a, n) }) {
			id.Aliases = append(id.Aliases, n)
		}
	}

	sids := slices.Clone(li.groups)
	for _, w := range directory.TokenSIDs() {
		if !slices.Contains(sids, w) {
			sids = append(sids, w)
		}
	}
	id.GroupSIDs = sids
	names := map[string]string{}
	var unknown []string
	for _, sid := range sids {
		if n, ok := directory.WellKnownName(sid); ok {
			names[sid] = n
		} else {
			unknown = append(unknown, sid)
		}
	}
	if dir := s.p.set.Directory; dir != nil && len(unknown) > 0 {
		found, err := dir.Names(context.Background(), unknown)
		if err != nil {
			note = "group names unknown, groups are SIDs only (" + err.Error() + ")"
		}
		for k, v := range found {
			names[k] = v
		}
	}
	id.Groups = make([]string, 0, len(sids))
	for _, sid := range sids {
		if n, ok := names[sid]; ok {
			id.Groups = append(id.Groups, n)
		} else {
			id.Groups = append(id.Groups, sid)
		}
	}
	id.Groups = append(id.Groups, s.p.groupsOf(kid.name)...)
	if domainName != "" {
		id.Groups = append(id.Groups, s.p.groupsOf(domainName)...)
	}
	return id, note
}

// inRole reports whether a role entry of an authorization rule names one
// of id's groups: its name, with or without its domain
// ("GATEHOUSE\AllStaff" or "AllStaff"), or its SID, without regard to
// case.
func inRole(id *pipeline.Identity, role string) bool {
	for _, g := range id.Groups {
		if strings.EqualFold(g, role) {
			return true
		}
		if i := strings.LastIndexByte(g, '\\'); i >= 0 && !strings.ContainsRune(role, '\\') && strings.EqualFold(g[i+1:], role) {
			return true
		}
	}
	for _, sid := range id.GroupSIDs {
		if strings.EqualFold(sid, role) {
			return true
		}
	}
	return false
}
