package auth

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/adtype"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/jcmturner/gokrb5/v8/types"
)

// pacKeytab is gokrb5's test keytab for sysHTTP@TEST.GOKRB5, the service
// whose key signed its Active Directory PAC test vector.
func pacKeytab(tb testing.TB) *keytab.Keytab {
	tb.Helper()
	b, err := hex.DecodeString(testdata.KEYTAB_SYSHTTP_TEST_GOKRB5)
	if err != nil {
		tb.Fatal(err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		tb.Fatal(err)
	}
	return kt
}

// pacToken makes "Negotiate <token>" for testuser1@TEST.GOKRB5 with a
// ticket for sysHTTP that carries gokrb5's AD PAC test vector (user
// TEST\testuser1, UPN testuser1@test.gokrb5, five domain groups).
func pacToken(tb testing.TB, kt *keytab.Keytab) string {
	tb.Helper()
	pacBytes, err := hex.DecodeString(testdata.MarshaledPAC_AD_WIN2K_PAC)
	if err != nil {
		tb.Fatal(err)
	}
	inner, err := asn1.Marshal(types.AuthorizationData{{ADType: adtype.ADWin2KPAC, ADData: pacBytes}})
	if err != nil {
		tb.Fatal(err)
	}
	sessionKey, err := types.GenerateEncryptionKey(mustEtype(tb, 18))
	if err != nil {
		tb.Fatal(err)
	}
	cl := krbclient.NewWithPassword("testuser1", "TEST.GOKRB5", "pw", krbconfig.New())
	now := time.Now().UTC()
	etp := messages.EncTicketPart{
		Flags: types.NewKrbFlags(), Key: sessionKey, CRealm: "TEST.GOKRB5", CName: cl.Credentials.CName(),
		AuthTime: now, StartTime: now.Add(-time.Minute), EndTime: now.Add(time.Hour), RenewTill: now.Add(time.Hour),
		AuthorizationData: types.AuthorizationData{{ADType: adtype.ADIfRelevant, ADData: inner}},
	}
	b, err := asn1.Marshal(etp)
	if err != nil {
		tb.Fatal(err)
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart)
	sname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "sysHTTP")
	skey, _, err := kt.GetEncryptionKey(sname, "TEST.GOKRB5", 2, 18)
	if err != nil {
		tb.Fatal(err)
	}
	ed, err := crypto.GetEncryptedData(b, skey, keyusage.KDC_REP_TICKET, 2)
	if err != nil {
		tb.Fatal(err)
	}
	tkt := messages.Ticket{TktVNO: 5, Realm: "TEST.GOKRB5", SName: sname, EncPart: ed}
	k5, err := spnego.NewKRB5TokenAPREQ(cl, tkt, sessionKey, []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	mech, err := k5.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()}, MechTokenBytes: mech}}
	sb, err := st.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sb)
}

func mustEtype(tb testing.TB, id int32) etype.EType {
	tb.Helper()
	e, err := crypto.GetEtype(id)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestNegotiatePAC: a ticket with an Active Directory PAC gives the
// logon information: NetBIOS domain, account name, UPN and group SIDs.
func TestNegotiatePAC(t *testing.T) {
	t.Parallel()
	kt := pacKeytab(t)
	n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
	id, err := n.accept(pacToken(t, kt), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	li := id.logon
	if id.name != "testuser1@TEST.GOKRB5" || li == nil || li.domain != "TEST" || li.user != "testuser1" || li.upn != "testuser1@test.gokrb5" {
		t.Fatalf("identity %+v logon %+v", id, li)
	}
	const dom = "S-1-5-21-3167651404-3865080224-2280184895"
	if !slices.Contains(li.groups, dom+"-513") || !slices.Contains(li.groups, dom+"-1108") {
		t.Errorf("group SIDs %q", li.groups)
	}
	st := &Stage{p: NewProvider(Settings{}, nil)}
	wid, _ := st.windowsIdentity(id)
	if wid.Name != `TEST\testuser1` || !slices.Contains(wid.GroupSIDs, "S-1-5-11") {
		t.Errorf("Windows identity %+v", wid)
	}
}
