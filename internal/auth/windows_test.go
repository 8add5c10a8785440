package auth

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// windowsStage is a stage with Windows authentication on (anonymous too)
// over a keytab written to a temp file, with set's other settings.
func windowsStage(t *testing.T, set Settings) *Stage {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	set.Keytab = filepath.Join(t.TempDir(), "http.keytab")
	if err := os.WriteFile(set.Keytab, b, 0o600); err != nil {
		t.Fatal(err)
	}
	set.Schemes = config.DefaultSchemes
	set.Schemes.Windows = true
	st, err := NewStage(NewPolicy(set.Schemes, nil), NewProvider(set, nil))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const domSID = "S-1-5-21-3002764801-2766524300-3047668357"

func aliceKerberos() *kerberosIdentity {
	return &kerberosIdentity{name: "alice@GATEHOUSE.TEST", logon: &logonInfo{
		domain: "GATEHOUSE", user: "alice", upn: "alice.smith@corp.example",
		groups: []string{domSID + "-513", domSID + "-1104", domSID + "-1105", "S-1-18-1"},
	}}
}

// TestWindowsIdentity: a PAC names the user DOMAIN\user by default, the
// UPN or the principal as userNameFormat says, the other forms kept as
// aliases; the well-known SIDs are added and named; without a directory
// the domain groups stay SIDs; without a PAC nothing changes.
func TestWindowsIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, name string
		aliases      []string
	}{
		{"", `GATEHOUSE\alice`, []string{"alice@GATEHOUSE.TEST", "alice.smith@corp.example"}},
		{NameDomain, `GATEHOUSE\alice`, []string{"alice@GATEHOUSE.TEST", "alice.smith@corp.example"}},
		{NameUPN, "alice.smith@corp.example", []string{"alice@GATEHOUSE.TEST", `GATEHOUSE\alice`}},
		{NamePrincipal, "alice@GATEHOUSE.TEST", []string{`GATEHOUSE\alice`, "alice.smith@corp.example"}},
	} {
		st := windowsStage(t, Settings{UserNameFormat: tc.format})
		id, note := st.windowsIdentity(aliceKerberos())
		if id.Name != tc.name || !slices.Equal(id.Aliases, tc.aliases) || note != "" {
			t.Errorf("format %q: name %q aliases %q note %q, want %q %q", tc.format, id.Name, id.Aliases, note, tc.name, tc.aliases)
		}
	}
	st := windowsStage(t, Settings{})
	id, _ := st.windowsIdentity(aliceKerberos())
	wantSIDs := []string{domSID + "-513", domSID + "-1104", domSID + "-1105", "S-1-18-1", "S-1-1-0", "S-1-5-2", "S-1-5-11", "S-1-5-15", "S-1-5-32-545"}
	wantGroups := []string{domSID + "-513", domSID + "-1104", domSID + "-1105", "Authentication authority asserted identity",
		"Everyone", `NT AUTHORITY\NETWORK`, `NT AUTHORITY\Authenticated Users`, `NT AUTHORITY\This Organization`, `BUILTIN\Users`}
	if !slices.Equal(id.GroupSIDs, wantSIDs) || !slices.Equal(id.Groups, wantGroups) {
		t.Errorf("groups %q sids %q, want %q %q", id.Groups, id.GroupSIDs, wantGroups, wantSIDs)
	}
	// A UPN that is the principal but for case is not repeated.
	kid := aliceKerberos()
	kid.logon.upn = "alice@gatehouse.test"
	if id, _ := st.windowsIdentity(kid); !slices.Equal(id.Aliases, []string{"alice@GATEHOUSE.TEST"}) {
		t.Errorf("aliases %q, want only the principal", id.Aliases)
	}
	// No PAC (an MIT KDC): the principal, no SIDs.
	id, _ = st.windowsIdentity(&kerberosIdentity{name: "bob@GH.TEST"})
	if id.Name != "bob@GH.TEST" || id.Aliases != nil || id.GroupSIDs != nil || id.Groups != nil {
		t.Errorf("no PAC: %+v", id)
	}
	// A PAC without a domain name falls back to the principal.
	id, _ = st.windowsIdentity(&kerberosIdentity{name: "carol@GH.TEST", logon: &logonInfo{user: "carol"}})
	if id.Name != "carol@GH.TEST" {
		t.Errorf("PAC without a domain: name %q", id.Name)
	}
}

// TestWindowsRules: users= matches any of the user's names; roles=
// matches a group's name with or without its domain, or its SID, without
// regard to case.
func TestWindowsRules(t *testing.T) {
	t.Parallel()
	id := &pipeline.Identity{Name: `GATEHOUSE\alice`, Aliases: []string{"alice@GATEHOUSE.TEST", "alice.smith@corp.example"}, Scheme: "Negotiate",
		Groups:    []string{`GATEHOUSE\AllStaff`, `NT AUTHORITY\Authenticated Users`, domSID + "-1104", "staff"},
		GroupSIDs: []string{domSID + "-1105", "S-1-5-11", domSID + "-1104"}}
	for _, tc := range []struct {
		rule config.AuthzRule
		want bool
	}{
		{config.AuthzRule{Users: []string{`gatehouse\ALICE`}}, true},
		{config.AuthzRule{Users: []string{"alice@GATEHOUSE.TEST"}}, true},
		{config.AuthzRule{Users: []string{"GATEHOUSE.TEST\\alice"}}, true},
		{config.AuthzRule{Users: []string{"alice.smith@CORP.example"}}, true},
		{config.AuthzRule{Users: []string{"alice"}}, false},
		{config.AuthzRule{Users: []string{`OTHER\alice`}}, false},
		{config.AuthzRule{Roles: []string{`GATEHOUSE\AllStaff`}}, true},
		{config.AuthzRule{Roles: []string{"allstaff"}}, true},
		{config.AuthzRule{Roles: []string{`OTHER\AllStaff`}}, false},
		{config.AuthzRule{Roles: []string{strings.ToLower(domSID) + "-1105"}}, true},
		{config.AuthzRule{Roles: []string{"S-1-5-11"}}, true},
		{config.AuthzRule{Roles: []string{"Authenticated Users"}}, true},
		{config.AuthzRule{Roles: []string{domSID + "-1104"}}, true},
		{config.AuthzRule{Roles: []string{"staff"}}, true},
		{config.AuthzRule{Roles: []string{"Developers", "S-1-5-32-544"}}, false},
	} {
		tc.rule.Allow = true
		sc := &Scope{Rules: []config.AuthzRule{tc.rule}}
		if ok, why := sc.Authorize(id, "GET"); ok != tc.want {
			t.Errorf("rule users=%q roles=%q: %v (%s), want %v", tc.rule.Users, tc.rule.Roles, ok, why, tc.want)
		}
	}
}

// TestStageNTLM: NTLM credentials where Windows authentication is on are
// refused with 401.1 and the Negotiate challenge, named in the log
// reason, and never left for the app, even where anonymous access is on.
func TestStageNTLM(t *testing.T) {
	t.Parallel()
	st := windowsStage(t, Settings{})
	for _, authz := range []string{"NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==", "ntlm x", "Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="} {
		r := request("/app/x", authz, false)
		res := st.Serve(r)
		if res == nil || res.Code() != "401.1" || !strings.Contains(res.Reason, "NTLM offered") {
			t.Fatalf("%s: result %+v, want 401.1 naming NTLM", authz, res)
		}
		if len(res.Header) != 1 || res.Header[0][1] != "Negotiate" {
			t.Errorf("%s: challenges %q, want Negotiate", authz, res.Header)
		}
		if v := r.Header.Get("Authorization"); v != "" {
			t.Errorf("%s: Authorization left on the request", authz)
		}
	}
	// Anonymous still passes.
	if res := st.Serve(request("/app/x", "", false)); res != nil {
		t.Errorf("anonymous: %+v", res)
	}
}
