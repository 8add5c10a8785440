package auth

import (
	"encoding/base64"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzNegotiateToken feeds client tokens to the Negotiate check: whatever
// the bytes, the answer is an error (a 401), never a panic.
func FuzzNegotiateToken(f *testing.F) {
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		f.Fatal(err)
	}
	n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
	for _, s := range []string{
		"", "oQcwBaADCgEC", "YIIBBgYGKwYBBQUCoIH7MIH4oDAwLgYJKoZIgvcSAQICBgkqhkiG9xIBAgIGCisGAQQBgjcCAh4GCisGAQQBgjcCAgqigcMEgcBgga0GCSqGSIb3EgECAgEAboGdMIGaoAMCAQWhAwIBDqIHAwUAIAAAAKNgYV4wXKADAgEFoQkbB0dILlRFU1SiHDAaoAMCAQOhEzARGwRIVFRQGwlsb2NhbGhvc3Q=",
		base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x01\x00\x00\x00")),
		base64.StdEncoding.EncodeToString([]byte{0x60, 0x80, 0x06, 0x06}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if id, err := n.accept(tok, "127.0.0.1"); err == nil {
			t.Fatalf("token %q accepted as %+v", tok, id)
		}
	})
}

// negToken makes "Negotiate <token>" for user with a ticket for
// HTTP/localhost encrypted with kt's key, valid from start to end.
func negToken(t testing.TB, kt *keytab.Keytab, user string, start, end time.Time, mutual bool) string {
	t.Helper()
	cfg := krbconfig.New()
	cl := krbclient.NewWithPassword(user, "GH.TEST", "pw", cfg)
	tkt, key, err := messages.NewTicket(cl.Credentials.CName(), "GH.TEST",
		types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/localhost"), "GH.TEST",
		types.NewKrbFlags(), kt, 18, 1, start, start, end, end)
	if err != nil {
		t.Fatal(err)
	}
	gss := []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}
	var ap []int
	if mutual {
		gss = append(gss, gssapi.ContextFlagMutual)
		ap = append(ap, flags.APOptionMutualRequired)
	}
	k5, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, gss, ap)
	if err != nil {
		t.Fatal(err)
	}
	mech, err := k5.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()}, MechTokenBytes: mech}}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestNegotiateAccept checks the Negotiate path without a KDC: a ticket
// made with the service key is accepted once; its replay, an expired one
// and one for another key are refused with the reason.
func TestNegotiateAccept(t *testing.T) {
	t.Parallel()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	other := keytab.New()
	if err := other.AddEntry("HTTP/localhost", "GH.TEST", "other", time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
	now := time.Now()
	tok := negToken(t, kt, "alice", now.Add(-time.Minute), now.Add(time.Hour), true)
	id, err := n.accept(tok, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if id.name != "alice@GH.TEST" || !strings.HasPrefix(id.reply, "Negotiate ") {
		t.Errorf("identity = %+v, want alice@GH.TEST with a mutual-authentication reply", id)
	}
	for _, tc := range []struct{ name, tok, want string }{
		{"replay", tok, "replayed authenticator"},
		{"expired", negToken(t, kt, "alice", now.Add(-3*time.Hour), now.Add(-2*time.Hour), false), "has expired"},
		{"wrong key", negToken(t, other, "alice", now, now.Add(time.Hour), false), "error decrypting"},
	} {
		if _, err := n.accept(tc.tok, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if id, err := n.accept(negToken(t, kt, "bob", now, now.Add(time.Hour), false), ""); err != nil || id.reply != "" {
		t.Errorf("without mutual authentication: %+v, %v; want no reply token", id, err)
	}
}

// TestReplayAcrossAppsOfASite checks that two apps sharing a site's replay
// cache refuse a token the other already took.
func TestReplayAcrossAppsOfASite(t *testing.T) {
	t.Parallel()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	shared := NewReplayCache()
	a := &negotiator{kt: kt, skew: time.Minute, seen: shared, pacLog: log.New(io.Discard, "", 0)}
	b := &negotiator{kt: kt, skew: time.Minute, seen: shared, pacLog: log.New(io.Discard, "", 0)}
	tok := negToken(t, kt, "alice", time.Now(), time.Now().Add(time.Hour), false)
	if _, err := a.accept(tok, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.accept(tok, ""); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Errorf("the sibling app took a replayed token: err = %v", err)
	}
}
