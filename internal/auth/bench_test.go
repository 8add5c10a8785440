package auth

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"golang.org/x/crypto/bcrypt"
)

// BenchmarkNegotiateAccept is the cost of checking one Kerberos token
// (decrypt ticket and authenticator, replay cache, AP-REP for mutual
// authentication). Run with -benchtime=Nx: the tokens are made first.
func BenchmarkNegotiateAccept(b *testing.B) {
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		b.Fatal(err)
	}
	n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = negToken(b, kt, "alice", time.Now(), time.Now().Add(time.Hour), true)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.accept(toks[i], "127.0.0.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBasicCheck is the cost of one Basic login at htpasswd -B's
// default cost (5).
func BenchmarkBasicCheck(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	if err != nil {
		b.Fatal(err)
	}
	u := &users{hash: map[string][]byte{"alice": h}, dummy: h}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !u.check("alice", "pw") {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkPolicyFor is the per-request lookup of the scope for a path,
// with one scope (the app's root) and with a second <location>.
func BenchmarkPolicyFor(b *testing.B) {
	for _, tc := range []struct {
		name string
		secs []config.Security
	}{
		{"root", nil},
		{"location", []config.Security{{Path: "admin"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pol := NewPolicy(config.DefaultSchemes, tc.secs)
			b.ReportAllocs()
			for b.Loop() {
				if pol.For("/Shop/Items/42") == nil {
					b.Fatal("no scope")
				}
			}
		})
	}
}

// BenchmarkWindowsLogin is a login with an Active Directory ticket, in
// two parts: "check" is the Kerberos check (ticket, authenticator, replay
// cache, PAC decoded and its server signature checked), what every AD
// login cost before group names; "identity" is what naming adds (the
// Windows names, the well-known SIDs, the groups named; with no
// directory: its warm-cache share is directory's BenchmarkNamesWarm).
// Run with -benchtime=Nx: the tokens for "check" are made first.
func BenchmarkWindowsLogin(b *testing.B) {
	kt := pacKeytab(b)
	b.Run("check", func(b *testing.B) {
		n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
		toks := make([]string, b.N)
		for i := range toks {
			toks[i] = pacToken(b, kt)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if kid, err := n.accept(toks[i], "127.0.0.1"); err != nil || kid.logon == nil {
				b.Fatal(kid, err)
			}
		}
	})
	b.Run("identity", func(b *testing.B) {
		n := &negotiator{kt: kt, skew: time.Minute, seen: NewReplayCache(), pacLog: log.New(io.Discard, "", 0)}
		kid, err := n.accept(pacToken(b, kt), "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		st := &Stage{p: NewProvider(Settings{}, nil)}
		b.ReportAllocs()
		for b.Loop() {
			if id, _ := st.windowsIdentity(kid); len(id.GroupSIDs) == 0 {
				b.Fatal("no groups")
			}
		}
	})
}
