package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// oidNTLM is NTLMSSP's mechanism OID, which SPNEGO clients may offer.
var oidNTLM = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

// negotiator checks SPNEGO/Kerberos tokens against a keytab.
type negotiator struct {
	kt    *keytab.Keytab
	sname *types.PrincipalName // nil: any principal in the keytab
	skew  time.Duration
	seen  *ReplayCache
	// pacLog receives gokrb5's PAC decoding messages (it needs a logger).
	pacLog *log.Logger
}

// kerberosIdentity is who a Negotiate token proved the client to be.
type kerberosIdentity struct {
	name  string     // "user@REALM"
	logon *logonInfo // from an Active Directory PAC, nil without one
	reply string     // WWW-Authenticate value to send back ("Negotiate <token>"), "" for none
}

// logonInfo is what an Active Directory PAC's logon information says of
// the client.
type logonInfo struct {
	domain, user string   // NetBIOS domain and account name (DOMAIN\user); either may be ""
	upn          string   // user principal name, "" when the PAC has none
	groups       []string // group SIDs: domain groups, extra SIDs, resource groups
}

// errNTLM is returned for a client that offers only NTLM.
var errNTLM = errors.New("NTLM offered: Gatehouse accepts Kerberos only (is the site's host name registered as an SPN with a key in the keytab, and does the client reach the KDC?)")

// accept checks the base64 SPNEGO (or raw Kerberos) token from
// "Authorization: Negotiate <b64>" sent from clientIP. Every failure is an
// error saying why, for the log; the client gets a plain 401.
func (n *negotiator) accept(b64, clientIP string) (id *kerberosIdentity, err error) {
	// The token is the client's: a decoder panic on a crafted one must be
	// a 401, never a 500 or a dead connection.
	defer func() {
		if p := recover(); p != nil {
			id, err = nil, fmt.Errorf("malformed token (decoder panic: %v)", p)
		}
	}()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("token is not base64: %w", err)
	}
	if bytes.HasPrefix(raw, []byte("NTLMSSP\x00")) {
		return nil, errNTLM
	}
	mech, mechToken, err := kerberosToken(raw)
	if err != nil {
		return nil, err
	}
	var k spnego.KRB5Token
	if err := k.Unmarshal(mechToken); err != nil {
		return nil, fmt.Errorf("bad Kerberos token: %w", err)
	}
	if !k.IsAPReq() {
		return nil, errors.New("the Kerberos token is not an AP-REQ")
	}
	req := &k.APReq
	var addr types.HostAddress
	if clientIP != "" {
		addr, _ = types.GetHostAddress(clientIP + ":0")
	}
	if ok, err := req.Verify(n.kt, n.skew, addr, n.sname); err != nil || !ok {
		if err == nil {
			err = errors.New("ticket not valid")
		}
		return nil, fmt.Errorf("ticket for %s rejected: %w", req.Ticket.SName.PrincipalNameString(), err)
	}
	client := req.Authenticator.CName.PrincipalNameString() + "@" + req.Authenticator.CRealm
	if n.seen.replayed(req, n.skew) {
		return nil, fmt.Errorf("replayed authenticator from %s", client)
	}
	id = &kerberosIdentity{name: client}
	// The Windows names and group SIDs come from an Active Directory PAC's
	// logon information (its server signature checked with the service
	// key). MIT KDCs (1.20+) add a PAC without one, which gokrb5 reports as
	// an error: such a ticket simply gives no PAC identity. (The ticket
	// itself was already proven genuine by decrypting it with the service
	// key.)
	if isPAC, pac, err := req.Ticket.GetPACType(n.kt, n.sname, n.pacLog); isPAC && err == nil && pac.KerbValidationInfo != nil {
		v := pac.KerbValidationInfo
		id.logon = &logonInfo{domain: v.LogonDomainName.Value, user: v.EffectiveName.Value, groups: v.GetGroupMembershipSIDs()}
		if pac.UPNDNSInfo != nil {
			id.logon.upn = pac.UPNDNSInfo.UPN
		}
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) {
		tok, err := apRep(req, mech)
		if err != nil {
			return nil, fmt.Errorf("cannot build the mutual-authentication reply for %s: %w", client, err)
		}
		id.reply = "Negotiate " + base64.StdEncoding.EncodeToString(tok)
	}
	return id, nil
}

// kerberosToken returns the Kerberos mechanism token inside an SPNEGO
// NegTokenInit (or raw, as some clients send it), and the mechanism OID
// the client named for it.
func kerberosToken(raw []byte) (asn1.ObjectIdentifier, []byte, error) {
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err != nil {
		var k spnego.KRB5Token
		if k.Unmarshal(raw) == nil {
			return gssapi.OIDKRB5.OID(), raw, nil
		}
		return nil, nil, fmt.Errorf("not an SPNEGO or Kerberos token: %w", err)
	}
	if !st.Init {
		return nil, nil, errors.New("unexpected SPNEGO NegTokenResp (no negotiation is in progress)")
	}
	krb, ntlm := false, false
	var mech asn1.ObjectIdentifier
	for _, m := range st.NegTokenInit.MechTypes {
		switch {
		case m.Equal(gssapi.OIDKRB5.OID()), m.Equal(gssapi.OIDMSLegacyKRB5.OID()):
			if !krb {
				mech = m
			}
			krb = true
		case m.Equal(oidNTLM):
			ntlm = true
		}
	}
	switch {
	case !krb && ntlm:
		return nil, nil, errNTLM
	case !krb:
		return nil, nil, errors.New("the client offered no Kerberos mechanism")
	case len(st.NegTokenInit.MechTokenBytes) == 0 || !st.NegTokenInit.MechTypes[0].Equal(mech):
		// The optimistic token is for the client's first choice, which is
		// not Kerberos: a second round would be needed for little gain.
		return nil, nil, errors.New("the client's first mechanism is not Kerberos")
	}
	return mech, st.NegTokenInit.MechTokenBytes, nil
}

// apRep builds the SPNEGO NegTokenResp (accept-completed) carrying the
// Kerberos AP-REP that proves to the client that the server holds the
// service key (mutual authentication, RFC 4120 §3.2.4, RFC 4121 §4.1).
func apRep(req *messages.APReq, mech asn1.ObjectIdentifier) ([]byte, error) {
	var seq [4]byte
	if _, err := rand.Read(seq[:]); err != nil {
		return nil, err
	}
	enc := messages.EncAPRepPart{
		CTime:          req.Authenticator.CTime.UTC(),
		Cusec:          req.Authenticator.Cusec,
		SequenceNumber: int64(binary.BigEndian.Uint32(seq[:]) & 0x3fffffff),
	}
	eb, err := asn1.Marshal(enc)
	if err != nil {
		return nil, err
	}
	eb = asn1tools.AddASNAppTag(eb, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(eb, req.Ticket.DecryptedEncPart.Key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rb, err := asn1.Marshal(messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
	if err != nil {
		return nil, err
	}
	rb = asn1tools.AddASNAppTag(rb, asnAppTag.APREP)
	// RFC 1964 §1.1 framing: [APPLICATION 0] { krb5 OID, TOK_ID 02 00, AP-REP }.
	tok, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return nil, err
	}
	tok = append(append(tok, 0x02, 0x00), rb...)
	tok = asn1tools.AddASNAppTag(tok, 0)
	resp := spnego.NegTokenResp{
		NegState:      asn1.Enumerated(spnego.NegStateAcceptCompleted),
		SupportedMech: mech,
		ResponseToken: tok,
	}
	return resp.Marshal()
}

// servicePrincipal parses "HTTP/host" (a "@REALM" suffix is ignored; the
// ticket's realm is used).
func servicePrincipal(spn string) *types.PrincipalName {
	if spn == "" {
		return nil
	}
	pn, _ := types.ParseSPNString(spn)
	pn.NameType = nametype.KRB_NT_SRV_INST
	return &pn
}

// ReplayCache remembers the authenticators seen within the clock-skew
// window (RFC 4120 §3.2.3), so a captured Authorization header cannot be
// sent again. One cache should serve every app that shares a keytab (a
// site), so a token cannot be replayed to a sibling app either. It keeps
// no goroutine: expired entries are dropped as new ones come in. The zero
// value is not usable; use NewReplayCache.
type ReplayCache struct {
	mu      sync.Mutex
	entries map[string]time.Time // key → when it may be forgotten
	sweep   time.Time            // next sweep
}

// NewReplayCache returns an empty cache.
func NewReplayCache() *ReplayCache { return &ReplayCache{entries: map[string]time.Time{}} }

// replayed reports whether req's authenticator was seen before, and
// remembers it.
func (c *ReplayCache) replayed(req *messages.APReq, skew time.Duration) bool {
	a := &req.Authenticator
	key := fmt.Sprintf("%s@%s|%s|%d.%d", a.CName.PrincipalNameString(), a.CRealm,
		req.Ticket.SName.PrincipalNameString(), a.CTime.Unix(), a.Cusec)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.sweep) {
		for k, exp := range c.entries {
			if now.After(exp) {
				delete(c.entries, k)
			}
		}
		c.sweep = now.Add(skew / 4)
	}
	if exp, ok := c.entries[key]; ok && now.Before(exp) {
		return true
	}
	// The authenticator is acceptable while its time is within skew of
	// ours, so it must be remembered until then.
	c.entries[key] = a.CTime.Add(skew).Add(time.Second)
	if c.entries[key].Before(now.Add(skew)) {
		c.entries[key] = now.Add(skew)
	}
	return false
}
