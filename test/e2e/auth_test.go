package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/bcrypt"
)

// authApp writes an app whose web.config turns anonymous access off and
// Windows and Basic on, denies mallory and DELETE everywhere, lets only
// the group "staff" into /staff and everybody into /public.
func authApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore %s />
    <security>
      <authentication>
        <anonymousAuthentication enabled="false" />
        <windowsAuthentication enabled="true" />
        <basicAuthentication enabled="true" realm="GH" />
      </authentication>
      <authorization>
        <add accessType="Deny" users="mallory@GH.TEST" />
        <add accessType="Deny" users="*" verbs="DELETE" />
      </authorization>
    </security>
  </system.webServer>
  <location path="staff">
    <system.webServer>
      <security>
        <authorization>
          <remove users="*" />
          <add accessType="Allow" roles="staff" />
        </authorization>
      </security>
    </system.webServer>
  </location>
  <location path="public">
    <system.webServer>
      <security>
        <authentication>
          <anonymousAuthentication enabled="true" />
        </authentication>
      </security>
    </system.webServer>
  </location>
</configuration>
`, testappAttrs("")))
	return dir
}

// appSaw is the part of testapp's /headers report these tests read.
type appSaw struct {
	User *struct {
		Name     string
		AuthType string
		Groups   []string
	} `json:"user"`
	RawHeaders http.Header `json:"raw_headers"`
}

// TestNegotiateAndBasic runs Gatehouse with Windows (Kerberos) and Basic
// authentication against a real MIT KDC: curl --negotiate and a Go
// (gokrb5) client get through and the app sees the user; no ticket, a
// garbage, expired or replayed one get 401; forged identity headers never
// reach the app; Basic with the right and a wrong password; authorization
// by user, group, verb and <location>.
func TestNegotiateAndBasic(t *testing.T) {
	t.Parallel()
	k := startKDC(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw", "mallory": "mallory-pw"})
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.htpasswd")
	writeFile(t, users, "carol:"+string(hash)+"\n")
	groups := filepath.Join(dir, "groups")
	writeFile(t, groups, "staff: alice@GH.TEST carol\n")
	app := authApp(t)
	p := newPKI(t, dir)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`sites:
  - name: intranet
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: /, dir: %s}
    authentication:
      keytab: %s
      userFile: %s
      groupFile: %s
      allowCleartextBasic: true
    accessLog: {path: %s}
`, p.certFile, p.keyFile, app, k.keytab, users, groups, filepath.Join(dir, "access.log")))
	// check loads the keytab and the user files as serving would.
	out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "windows;basic; at the root; keytab "+k.keytab) {
		t.Errorf("check: %v\n%s", err, out)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	writeFile(t, badCfg, strings.Replace(readFile(t, cfgFile), k.keytab, filepath.Join(dir, "missing.keytab"), 1))
	if out, err := exec.Command(gatehouseBin, "check", badCfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "missing.keytab") {
		t.Errorf("check with a missing keytab: %v\n%s", err, out)
	}
	g := start(t, app, "serve", "--config", cfgFile)
	port := g.listenerAddr(t, "http")[strings.LastIndexByte(g.listenerAddr(t, "http"), ':')+1:]
	// The service principal is HTTP/localhost: clients must name the host so.
	base := "http://localhost:" + port

	do := func(method, path string, hdr ...string) (int, http.Header, appSaw) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var saw appSaw
		if resp.StatusCode == 200 && strings.HasSuffix(path, "/headers") {
			if err := json.Unmarshal(b, &saw); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
		}
		return resp.StatusCode, resp.Header, saw
	}

	// No credentials: 401 with both challenges; the app is not reached.
	code, h, _ := do("GET", "/headers", "MS-ASPNETCORE-USER", "forged")
	if code != 401 || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), "|"), "Negotiate") ||
		!strings.Contains(strings.Join(h.Values("WWW-Authenticate"), "|"), `Basic realm="GH"`) {
		t.Errorf("no ticket: %d %q, want 401 with Negotiate and Basic challenges", code, h.Values("WWW-Authenticate"))
	}
	// Anonymous where the location allows it; a forged identity is dropped.
	code, _, saw := do("GET", "/public/headers", "MS-ASPNETCORE-USER", "admin@GH.TEST", "MS-ASPNETCORE-GROUPS", "staff")
	if code != 200 || saw.User != nil || saw.RawHeaders.Get("MS-ASPNETCORE-USER") != "" || saw.RawHeaders.Get("MS-ASPNETCORE-GROUPS") != "" {
		t.Errorf("anonymous /public with forged headers: %d, app saw user %+v and raw %v", code, saw.User, saw.RawHeaders)
	}
	// Garbage tokens: 401, never 500.
	for _, tok := range []string{"Zm9v", "!!!", base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x01\x00\x00\x00"))} {
		if code, _, _ := do("GET", "/headers", "Authorization", "Negotiate "+tok); code != 401 {
			t.Errorf("garbage token %q: %d, want 401", tok, code)
		}
	}

	// curl --negotiate with a ticket from kinit: the app sees alice and
	// her group; curl checks the server's mutual-authentication token.
	if curl := krbTool("curl"); curl != "" {
		env := k.kinit(t, "alice", "alice-pw")
		cmd := exec.Command(curl, "-sS", "-f", "--negotiate", "-u", ":", "-H", "MS-ASPNETCORE-USER: forged", base+"/staff/headers")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl --negotiate: %v\n%s", err, out)
		}
		var saw appSaw
		if err := json.Unmarshal(out, &saw); err != nil {
			t.Fatalf("decode %s: %v", out, err)
		}
		if saw.User == nil || saw.User.Name != "alice@GH.TEST" || saw.User.AuthType != "Negotiate" || strings.Join(saw.User.Groups, ",") != "staff" {
			t.Errorf("curl as alice: app saw %+v, want alice@GH.TEST (Negotiate) in staff", saw.User)
		}
		if v := saw.RawHeaders.Values("Ms-Aspnetcore-User"); len(v) != 1 || v[0] != "alice@GH.TEST" {
			t.Errorf("MS-ASPNETCORE-USER at the app = %q, want only Gatehouse's", v)
		}
		if v := saw.RawHeaders.Get("Authorization"); v != "" {
			t.Errorf("the Negotiate token reached the app: %q", v)
		}
		// The same over HTTPS with HTTP/2 (-k: the test certificate does
		// not name localhost, the host the service principal is for).
		tlsPort := g.listenerAddr(t, "https")[strings.LastIndexByte(g.listenerAddr(t, "https"), ':')+1:]
		cmd = exec.Command(curl, "-sS", "-f", "-k", "--http2", "--negotiate", "-u", ":", "-w", "\n%{http_version}", "https://localhost:"+tlsPort+"/staff/headers")
		cmd.Env = env
		out, err = cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl --negotiate over h2: %v\n%s", err, out)
		}
		i := strings.LastIndexByte(string(out), '\n')
		body, version := out[:max(i, 0)], string(out[i+1:])
		saw = appSaw{}
		if err := json.Unmarshal(body, &saw); err != nil || version != "2" || saw.User == nil || saw.User.Name != "alice@GH.TEST" {
			t.Errorf("curl over HTTP/%s: app saw %+v (%v)", version, saw.User, err)
		}
		// The app's environment says which schemes are on.
		cmd = exec.Command(curl, "-sS", "-f", "--negotiate", "-u", ":", base+"/env?name=ASPNETCORE_IIS_HTTPAUTH")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != "windows;basic;" {
			t.Errorf("ASPNETCORE_IIS_HTTPAUTH = %q (%v), want windows;basic;", out, err)
		}
	} else {
		t.Log("curl not installed; the curl --negotiate check is skipped")
	}

	// The Go client (gokrb5): bob is not in staff; mallory is denied
	// everywhere; DELETE is denied to all.
	cfg, err := krbconfig.Load(k.conf)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user string) *krbclient.Client {
		cl := krbclient.NewWithPassword(user, kdcRealm, user+"-pw", cfg, krbclient.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		t.Cleanup(cl.Destroy)
		return cl
	}
	bob, mallory := login("bob"), login("mallory")
	negotiate := func(cl *krbclient.Client, mutual bool) (string, types.EncryptionKey, time.Time) {
		t.Helper()
		tkt, key, err := cl.GetServiceTicket("HTTP/localhost")
		if err != nil {
			t.Fatal(err)
		}
		return apReqHeader(t, cl, tkt, key, mutual)
	}
	for _, tc := range []struct {
		who          *krbclient.Client
		method, path string
		want         int
	}{
		{bob, "GET", "/headers", 200},
		{bob, "GET", "/staff/headers", 401},
		{bob, "DELETE", "/headers", 401},
		{mallory, "GET", "/headers", 401},
		{mallory, "GET", "/public/headers", 401}, // deny rules reach every location
	} {
		authz, _, _ := negotiate(tc.who, false)
		code, _, saw := do(tc.method, tc.path, "Authorization", authz)
		if code != tc.want {
			t.Errorf("%s %s as %s: %d, want %d", tc.method, tc.path, tc.who.Credentials.UserName(), code, tc.want)
		}
		if code == 200 && (saw.User == nil || saw.User.Name != tc.who.Credentials.UserName()+"@GH.TEST") {
			t.Errorf("%s %s: app saw %+v", tc.method, tc.path, saw.User)
		}
	}

	// A Kerberos login holds for the rest of its connection (IIS's
	// authPersistNonNTLM); another connection must log in again.
	keep := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer keep.CloseIdleConnections()
	sameConn := func(hdr ...string) (int, appSaw) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/headers", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := keep.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var saw appSaw
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&saw); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, saw
	}
	authz, _, _ := negotiate(bob, false)
	if code, _ := sameConn("Authorization", authz); code != 200 {
		t.Fatalf("bob on a keep-alive connection: %d", code)
	}
	if code, saw := sameConn(); code != 200 || saw.User == nil || saw.User.Name != "bob@GH.TEST" {
		t.Errorf("the next request on bob's connection, without a token: %d, app saw %+v; want bob", code, saw.User)
	}
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(base + "/headers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a request on a new connection without a token: %d, want 401", resp.StatusCode)
	}

	// The access log's cs-username is the user.
	waitFor(t, 10*time.Second, "bob@GH.TEST in the access log", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		return strings.Contains(string(b), " bob@GH.TEST ")
	})

	var key types.EncryptionKey
	var ctime time.Time
	// Mutual authentication: the server's token decrypts with the session
	// key and echoes the authenticator's time; replaying the same header
	// is refused.
	authz, key, ctime = negotiate(bob, true)
	code, h, _ = do("GET", "/headers", "Authorization", authz)
	if code != 200 {
		t.Fatalf("mutual: %d", code)
	}
	checkAPRep(t, h.Get("WWW-Authenticate"), key, ctime)
	if code, _, _ := do("GET", "/headers", "Authorization", authz); code != 401 {
		t.Errorf("replayed authenticator: %d, want 401", code)
	}

	// An expired ticket, made with the service key: 401.
	kt, err := keytab.Load(k.keytab)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	tkt, skey, err := messages.NewTicket(bob.Credentials.CName(), kdcRealm,
		types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/localhost"), kdcRealm,
		types.NewKrbFlags(), kt, 18, 0, past, past, past.Add(time.Hour), past.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, _, _ := apReqHeader(t, bob, tkt, skey, false)
	if code, _, _ := do("GET", "/headers", "Authorization", expired); code != 401 {
		t.Errorf("expired ticket: %d, want 401", code)
	}
	// The log line is written before the answer, but reaches us through
	// a pipe.
	waitFor(t, 10*time.Second, "the log to say why the expired ticket was refused", func() bool {
		return strings.Contains(g.logs.String(), "service ticket provided has expired")
	})

	// Basic: carol (in staff by the group file) with the right password; a
	// wrong one is refused.
	basic := func(pw string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("carol:"+pw)) }
	code, _, saw = do("GET", "/staff/headers", "Authorization", basic("carol-pw"))
	if code != 200 || saw.User == nil || saw.User.Name != "carol" || saw.User.AuthType != "Basic" {
		t.Errorf("Basic carol: %d, app saw %+v", code, saw.User)
	}
	if code, _, _ := do("GET", "/headers", "Authorization", basic("wrong")); code != 401 {
		t.Errorf("Basic with a wrong password: %d, want 401", code)
	}
	// The user file is watched: a new password works once it is written
	// (replaced, as editors and htpasswd do), and the old one stops.
	hash, err = bcrypt.GenerateFromPassword([]byte("new-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, users+".tmp", "carol:"+string(hash)+"\n")
	if err := os.Rename(users+".tmp", users); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the new password to be accepted", func() bool {
		code, _, _ := do("GET", "/headers", "Authorization", basic("new-pw"))
		return code == 200
	})
	if code, _, _ := do("GET", "/headers", "Authorization", basic("carol-pw")); code != 401 {
		t.Errorf("old password after the reload: %d, want 401", code)
	}
}

// apReqHeader builds "Negotiate <SPNEGO NegTokenInit>" for tkt, asking for
// mutual authentication when mutual is set. It returns the header, the
// session key and the authenticator's time.
func apReqHeader(t *testing.T, cl *krbclient.Client, tkt messages.Ticket, key types.EncryptionKey, mutual bool) (string, types.EncryptionKey, time.Time) {
	t.Helper()
	gssFlags := []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}
	var apOpts []int
	if mutual {
		gssFlags = append(gssFlags, gssapi.ContextFlagMutual)
		apOpts = append(apOpts, flags.APOptionMutualRequired)
	}
	k5, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, gssFlags, apOpts)
	if err != nil {
		t.Fatal(err)
	}
	mech, err := k5.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes: []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()}, MechTokenBytes: mech}}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The authenticator's time as the server reads it (whole seconds).
	if err := k5.APReq.DecryptAuthenticator(key); err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b), key, k5.APReq.Authenticator.CTime
}

// checkAPRep decodes the server's "Negotiate <token>" and checks that its
// AP-REP decrypts with the session key and carries the authenticator's
// time.
func checkAPRep(t *testing.T, v string, key types.EncryptionKey, ctime time.Time) {
	t.Helper()
	b64, ok := strings.CutPrefix(v, "Negotiate ")
	if !ok {
		t.Fatalf("WWW-Authenticate = %q, want the server's Negotiate token", v)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	var resp spnego.NegTokenResp
	if err := resp.Unmarshal(raw); err != nil {
		t.Fatalf("NegTokenResp: %v", err)
	}
	if resp.State() != spnego.NegStateAcceptCompleted {
		t.Errorf("negState = %v, want accept-completed", resp.State())
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(resp.ResponseToken); err != nil || !k5.IsAPRep() {
		t.Fatalf("response token is not an AP-REP: %v", err)
	}
	plain, err := crypto.DecryptEncPart(k5.APRep.EncPart, key, keyusage.AP_REP_ENCPART)
	if err != nil {
		t.Fatalf("AP-REP does not decrypt with the session key: %v", err)
	}
	var enc messages.EncAPRepPart
	if err := enc.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if !enc.CTime.Equal(ctime) {
		t.Errorf("AP-REP ctime = %v, want the authenticator's %v", enc.CTime, ctime)
	}
}
