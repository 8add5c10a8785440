package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Account is what the directory says of a user, for a Kerberos ticket
// that carries no PAC (a service account marked "no authorization data
// required" in Active Directory gets such tickets).
type Account struct {
	// Domain is the NetBIOS domain and User the account name
	// (sAMAccountName): Domain\User. UPN is the userPrincipalName, "" if
	// none is set.
	Domain, User, UPN string
	// Groups are the SIDs of the account's groups: its primary group
	// (Domain Users) and every group it is a member of, directly or
	// through nested groups (LDAP_MATCHING_RULE_IN_CHAIN).
	Groups []string
}

// ErrNoAccount is Account's error for a principal the directory does not
// hold: its realm is not the directory's domain, or no account has its
// name.
var ErrNoAccount = errors.New("no such account in the directory")

// oidInChain is LDAP_MATCHING_RULE_IN_CHAIN: membership through any
// number of nested groups.
const oidInChain = "1.2.840.113556.1.4.1941"

type cachedAccount struct {
	acct    *Account // nil: not in the directory
	expires time.Time
}

// Account looks up principal ("alice@EXAMPLE.COM") in the directory: the
// realm must be the directory's DNS domain, the name an account's
// sAMAccountName. Found accounts are cached for the TTL (their groups'
// names too, for Names), absent ones for the negative TTL. The error is
// ErrNoAccount, or wraps ErrUnavailable when the directory could not be
// asked.
func (d *Directory) Account(ctx context.Context, principal string) (*Account, error) {
	key := strings.ToLower(principal)
	if a, ok := d.cachedAccount(key); ok {
		return a, accountErr(a)
	}
	d.lookupMu.Lock()
	defer d.lookupMu.Unlock()
	if a, ok := d.cachedAccount(key); ok {
		return a, accountErr(a)
	}
	user, realm, ok := strings.Cut(principal, "@")
	if !ok || user == "" || strings.Contains(user, "/") {
		return nil, ErrNoAccount
	}
	d.mu.Lock()
	known := d.domain
	d.mu.Unlock()
	if known != "" && !strings.EqualFold(realm, known) {
		return nil, ErrNoAccount // another realm (an MIT KDC's): no need to ask
	}
	var acct *Account
	var names map[string]string
	err := d.ask(ctx, func(c *conn) (err error) {
		acct, names, err = c.account(user, realm)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if acct == nil {
		d.accounts[key] = cachedAccount{expires: now.Add(d.cfg.NegativeTTL)}
		return nil, ErrNoAccount
	}
	d.accounts[key] = cachedAccount{acct: acct, expires: now.Add(d.cfg.TTL)}
	for sid, n := range names {
		d.cache[sid] = cached{name: n, expires: now.Add(d.cfg.TTL)}
	}
	if len(d.accounts) >= 4096 {
		for k, c := range d.accounts {
			if now.After(c.expires) {
				delete(d.accounts, k)
			}
		}
	}
	return acct, nil
}

func accountErr(a *Account) error {
	if a == nil {
		return ErrNoAccount
	}
	return nil
}

// cachedAccount returns the cache's answer for key (nil for an account
// the directory does not hold), and whether it has one.
func (d *Directory) cachedAccount(key string) (*Account, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.accounts[key]
	if !ok || d.now().After(c.expires) {
		return nil, false
	}
	d.hits.Add(1)
	return c.acct, true
}

// account finds user of realm and its groups, nested ones included, with
// their names; nil when the realm is not the directory's domain or no
// account has that name.
func (c *conn) account(user, realm string) (*Account, map[string]string, error) {
	if !strings.EqualFold(dnsDomain(c.base), realm) {
		return nil, nil, nil
	}
	res, err := c.Search(ldap.NewSearchRequest(c.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		"(&(objectCategory=person)(objectClass=user)(sAMAccountName="+ldap.EscapeFilter(user)+"))",
		[]string{"objectSid", "sAMAccountName", "userPrincipalName", "primaryGroupID"}, nil))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: search for the account %s: %w", c.url, user, err)
	}
	if len(res.Entries) != 1 {
		return nil, nil, nil
	}
	e := res.Entries[0]
	sid, err := sidString(e.GetRawAttributeValue("objectSid"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: account %s: objectSid: %w", c.url, user, err)
	}
	dom := c.netbios[strings.ToLower(c.base)]
	acct := &Account{Domain: dom, User: e.GetAttributeValue("sAMAccountName"), UPN: e.GetAttributeValue("userPrincipalName")}
	names := map[string]string{}
	if rid, err := strconv.ParseUint(e.GetAttributeValue("primaryGroupID"), 10, 32); err == nil && rid != 0 {
		domainSID := sid[:strings.LastIndexByte(sid, '-')]
		acct.Groups = append(acct.Groups, domainSID+"-"+strconv.FormatUint(rid, 10))
	}
	res, err = c.Search(ldap.NewSearchRequest(c.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(member:"+oidInChain+":="+ldap.EscapeFilter(e.DN)+")", []string{"objectSid", "sAMAccountName"}, nil))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: search for the groups of %s: %w", c.url, user, err)
	}
	for _, g := range res.Entries {
		gsid, err := sidString(g.GetRawAttributeValue("objectSid"))
		if err != nil {
			continue
		}
		acct.Groups = append(acct.Groups, gsid)
		if n := g.GetAttributeValue("sAMAccountName"); n != "" {
			names[gsid] = c.qualify(gsid, g.DN, n)
		}
	}
	return acct, names, nil
}

// dnsDomain is the DNS name of a domain's DN: "DC=example,DC=com" →
// "example.com".
func dnsDomain(dn string) string {
	var labels []string
	for rdn := range strings.SplitSeq(dn, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(rdn), "="); ok && strings.EqualFold(k, "DC") {
			labels = append(labels, v)
		}
	}
	return strings.Join(labels, ".")
}
