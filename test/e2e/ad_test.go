package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/directory"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// adApp writes an app with Windows authentication only, whose locations
// each let in one kind of user: /staff the group GATEHOUSE\AllStaff (alice
// through Developers' nesting), /devs "Developers" without its domain,
// /sid AllStaff by SID, /authenticated and /users the well-known groups,
// /alice the user by her Windows name, /principal by her Kerberos name.
func adApp(t *testing.T, allStaffSID string) string {
	t.Helper()
	loc := func(path, rule string) string {
		return fmt.Sprintf(`
  <location path=%q>
    <system.webServer>
      <security>
        <authorization>
          <remove users="*" />
          <add accessType="Allow" %s />
        </authorization>
      </security>
    </system.webServer>
  </location>`, path, rule)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore %s />
    <security>
      <authentication>
        <anonymousAuthentication enabled="false" />
        <windowsAuthentication enabled="true" />
      </authentication>
    </security>
  </system.webServer>%s%s%s%s%s%s%s
</configuration>
`, testappAttrs(""),
		loc("staff", `roles="GATEHOUSE\AllStaff"`),
		loc("devs", `roles="developers"`),
		loc("sid", `roles="`+strings.ToLower(allStaffSID)+`"`),
		loc("authenticated", `roles="S-1-5-11"`),
		loc("users", `roles="BUILTIN\Users"`),
		loc("alice", `users="GATEHOUSE\alice"`),
		loc("principal", `users="alice@GATEHOUSE.TEST"`)))
	return dir
}

// TestActiveDirectory runs Windows authentication against a real Active
// Directory domain controller (Samba): the app gets GATEHOUSE\alice and her
// groups by name, nested ones included, with the well-known groups of a
// Windows token and their SIDs; authorization by group name with and
// without the domain, by SID, by well-known group and by user name in any
// form; bob, outside the groups, is refused 401.2; a second GSSAPI client
// (gokrb5) gets the same; NTLM is refused 401.1 and named in the log;
// `gatehouse check` reports the directory, bound with a password or with
// Kerberos; a ticket without a PAC gets its account and nested groups
// from the directory; a group renamed in AD shows on the next lookup;
// the admin status and the metrics show the directory; and with it stopped
// logins go on with SID-only groups, a rule by group name refuses and
// the log says why, while a rule by SID still lets alice in.
func TestActiveDirectory(t *testing.T) {
	t.Parallel()
	dc := startSambaDC(t)
	aliceEnv := dc.kinit(t, "alice")
	bobEnv := dc.kinit(t, "bob")

	dir := t.TempDir()
	// A closed port first: the directory fails over to the DC.
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	app := adApp(t, dc.allStaffSID)
	writeFile(t, cfgFile, fmt.Sprintf(`sites:
  - name: intranet
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
    applications:
      - {path: /, dir: %s}
    authentication:
      keytab: %s
      directory:
        url: [ldaps://%s, ldaps://%s]
        caFile: %s
        bindUser: GATEHOUSE\web
        bindPasswordFile: %s
        cacheTTL: 1ms
        negativeCacheTTL: 1ms
`, app, dc.keytab, closedAddr, dc.ns.PeerIP, dc.caFile, dc.pwFile))

	out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput()
	if want := "directory of site intranet: ldaps://" + dc.ns.PeerIP + ` (TLS, bound as GATEHOUSE\web): domain GATEHOUSE (DC=gatehouse,DC=test)`; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("check: %v\n%s\nwant %q", err, out, want)
	}

	// A Kerberos bind (SASL GSSAPI) with web's key, through check.
	krbCfg := filepath.Join(dir, "kerberos-bind.yaml")
	writeFile(t, krbCfg, fmt.Sprintf(`sites:
  - name: intranet
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
    applications:
      - {path: /, dir: %s}
    authentication:
      keytab: %s
      directory:
        url: ldaps://%s
        caFile: %s
        bindPrincipal: web@GATEHOUSE.TEST
        bindKeytab: %s
`, app, dc.keytab, dc.ns.PeerIP, dc.caFile, dc.webKeytab))
	out, err = exec.Command(gatehouseBin, "check", krbCfg).CombinedOutput()
	if want := "directory of site intranet: ldaps://" + dc.ns.PeerIP + ` (TLS, bound with Kerberos as web@GATEHOUSE.TEST): domain GATEHOUSE (DC=gatehouse,DC=test)`; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("check with a Kerberos bind: %v\n%s\nwant %q", err, out, want)
	}

	pidFile := filepath.Join(dir, "gh.pid")
	g := start(t, app, "serve", "--config", cfgFile, "--pid-file", pidFile, "--metrics", "127.0.0.1:0")
	port := g.listenerAddr(t, "http")[strings.LastIndexByte(g.listenerAddr(t, "http"), ':')+1:]
	base := "http://localhost:" + port

	// get runs curl --negotiate as the user of env and returns the status
	// and the body.
	get := func(env []string, path string, hdr ...string) (int, string) {
		t.Helper()
		args := []string{"-sS", "--negotiate", "-u", ":", "-o", "-", "-w", "\n%{http_code}"}
		for _, h := range hdr {
			args = append(args, "-H", h)
		}
		cmd := exec.Command(krbTool("curl"), append(args, base+path)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", path, err, out)
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		var code int
		fmt.Sscan(s[i+1:], &code)
		return code, s[:i]
	}
	decode := func(body string) appSaw {
		t.Helper()
		var saw appSaw
		if err := json.Unmarshal([]byte(body), &saw); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		return saw
	}

	t.Run("names", func(t *testing.T) {
		code, body := get(aliceEnv, "/headers", "MS-ASPNETCORE-GROUPSIDS: S-1-5-32-544")
		if code != 200 {
			t.Fatalf("alice /headers: %d %s", code, body)
		}
		saw := decode(body)
		if saw.User == nil || saw.User.Name != `GATEHOUSE\alice` || saw.User.AuthType != "Negotiate" {
			t.Fatalf("app saw %+v, want GATEHOUSE\\alice (Negotiate)", saw.User)
		}
		for _, want := range []string{`GATEHOUSE\Developers`, `GATEHOUSE\AllStaff`, `GATEHOUSE\Domain Users`,
			"Everyone", `NT AUTHORITY\Authenticated Users`, `NT AUTHORITY\NETWORK`, `BUILTIN\Users`} {
			if !slices.Contains(saw.User.Groups, want) {
				t.Errorf("groups %q lack %q", saw.User.Groups, want)
			}
		}
		sids := strings.Split(saw.RawHeaders.Get("Ms-Aspnetcore-Groupsids"), ",")
		if len(saw.RawHeaders.Values("Ms-Aspnetcore-Groupsids")) != 1 || !slices.Contains(sids, dc.sid+"-513") ||
			!slices.Contains(sids, "S-1-5-11") || slices.Contains(sids, "S-1-5-32-544") {
			t.Errorf("MS-ASPNETCORE-GROUPSIDS %q: want Domain Users and S-1-5-11, never the client's", saw.RawHeaders.Values("Ms-Aspnetcore-Groupsids"))
		}
		if !slices.Contains(sids, dc.allStaffSID) {
			t.Errorf("MS-ASPNETCORE-GROUPSIDS %q lacks AllStaff's SID %s", sids, dc.allStaffSID)
		}
	})

	t.Run("roles", func(t *testing.T) {
		for _, tc := range []struct {
			env  []string
			who  string
			path string
			want int
		}{
			{aliceEnv, "alice", "/staff/x", 200},
			{aliceEnv, "alice", "/devs/x", 200},
			{aliceEnv, "alice", "/sid/x", 200},
			{aliceEnv, "alice", "/authenticated/x", 200},
			{aliceEnv, "alice", "/users/x", 200},
			{aliceEnv, "alice", "/alice/x", 200},
			{aliceEnv, "alice", "/principal/x", 200},
			{bobEnv, "bob", "/staff/x", 401},
			{bobEnv, "bob", "/devs/x", 401},
			{bobEnv, "bob", "/sid/x", 401},
			{bobEnv, "bob", "/alice/x", 401},
			{bobEnv, "bob", "/authenticated/x", 200},
			{bobEnv, "bob", "/users/x", 200},
		} {
			if code, body := get(tc.env, tc.path); code != tc.want {
				t.Errorf("%s %s: %d, want %d\n%s", tc.who, tc.path, code, tc.want, body)
			}
		}
		g.waitLog(t, `no authorization rule allows GATEHOUSE\bob`)
	})

	t.Run("gokrb5 client", func(t *testing.T) {
		cfg, err := krbconfig.Load(dc.krb5)
		if err != nil {
			t.Fatal(err)
		}
		cl := krbclient.NewWithPassword("bob", adRealm, adUsers["bob"], cfg, krbclient.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Fatalf("gokrb5 login: %v", err)
		}
		defer cl.Destroy()
		req, _ := http.NewRequest("GET", base+"/authenticated/headers", nil)
		if err := spnego.SetSPNEGOHeader(cl, req, "HTTP/localhost"); err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("gokrb5 as bob: %d %s", resp.StatusCode, b)
		}
		if saw := decode(string(b)); saw.User == nil || saw.User.Name != `GATEHOUSE\bob` || slices.Contains(saw.User.Groups, `GATEHOUSE\Developers`) {
			t.Errorf("gokrb5 as bob: app saw %+v", saw.User)
		}
	})

	t.Run("NTLM", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/headers", nil)
		req.Header.Set("Authorization", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
			t.Errorf("NTLM: %d %q, want 401 with the Negotiate challenge", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
		}
		g.waitLog(t, "NTLM offered")
	})

	t.Run("cold lookup", func(t *testing.T) {
		// What a login whose groups are not cached costs: connect, TLS,
		// bind, rootDSE, domains, one search. Measured, not asserted.
		d, err := directory.New(directory.Config{URLs: []string{"ldaps://" + dc.ns.PeerIP}, CAFile: dc.caFile,
			BindUser: `GATEHOUSE\web`, BindPasswordFile: dc.pwFile, TTL: time.Nanosecond, NegativeTTL: time.Nanosecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sids := []string{dc.sid + "-513", dc.allStaffSID, "S-1-5-32-545"}
		const n = 10
		begin := time.Now()
		for range n {
			names, err := d.Names(context.Background(), sids)
			if err != nil || names[dc.allStaffSID] != `GATEHOUSE\AllStaff` || names["S-1-5-32-545"] != `BUILTIN\Users` {
				t.Fatalf("cold lookup: %v %v", names, err)
			}
		}
		t.Logf("a cold lookup of %d SIDs took %v on average", len(sids), (time.Since(begin) / n).Round(10*time.Microsecond))
	})

	t.Run("no PAC", func(t *testing.T) {
		// web's tickets lose their PAC (NO_AUTH_DATA_REQUIRED): the
		// account and its nested groups come from the directory.
		_, python := sambaTool(t)
		script := `
import sys, ldb
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
m = ldb.Message()
m.dn = ldb.Dn(db, "CN=web,CN=Users," + str(db.domain_dn()))
m["uac"] = ldb.MessageElement(str(0x200 | 0x2000000), ldb.FLAG_MOD_REPLACE, "userAccountControl")
db.modify(m)
`
		if out, err := exec.Command(python, "-c", script, dc.conf).CombinedOutput(); err != nil {
			t.Fatalf("set NO_AUTH_DATA_REQUIRED on web: %v\n%s", err, out)
		}
		env := dc.kinit(t, "alice") // a new ticket, without a PAC
		code, body := get(env, "/staff/headers")
		if code != 200 {
			t.Fatalf("alice /staff without a PAC: %d %s", code, body)
		}
		saw := decode(body)
		if saw.User == nil || saw.User.Name != `GATEHOUSE\alice` || !slices.Contains(saw.User.Groups, `GATEHOUSE\AllStaff`) ||
			!slices.Contains(saw.User.Groups, `GATEHOUSE\Developers`) || !slices.Contains(saw.User.Groups, `GATEHOUSE\Domain Users`) ||
			!slices.Contains(strings.Split(saw.RawHeaders.Get("Ms-Aspnetcore-Groupsids"), ","), dc.allStaffSID) {
			t.Errorf("without a PAC the app saw %+v (SIDs %q)", saw.User, saw.RawHeaders.Get("Ms-Aspnetcore-Groupsids"))
		}
		g.waitLog(t, "Kerberos ticket without a PAC")
	})

	t.Run("group renamed", func(t *testing.T) {
		// The cache TTL is 1ms here: the next login asks again.
		tool, _ := sambaTool(t)
		if out, err := exec.Command(tool, "group", "rename", "AllStaff", "--samaccountname=AllPeople", "-s", dc.conf).CombinedOutput(); err != nil {
			t.Fatalf("samba-tool group rename: %v\n%s", err, out)
		}
		code, body := get(aliceEnv, "/sid/headers")
		if code != 200 {
			t.Fatalf("alice /sid after the rename: %d %s", code, body)
		}
		if saw := decode(body); saw.User == nil || !slices.Contains(saw.User.Groups, `GATEHOUSE\AllPeople`) || slices.Contains(saw.User.Groups, `GATEHOUSE\AllStaff`) {
			t.Errorf("after the rename the app saw %+v, want GATEHOUSE\\AllPeople", saw.User)
		}
	})

	t.Run("status and metrics", func(t *testing.T) {
		code, out := ghctl(t, "status", "--pid-file", pidFile)
		if code != 0 || !regexp.MustCompile(`(?m)^intranet\s+ldaps://`+regexp.QuoteMeta(dc.ns.PeerIP)+`\s+up\s+[1-9]`).MatchString(out) {
			t.Errorf("gatehouse status: exit %d, want the directory up with lookups:\n%s", code, out)
		}
		metricsAddr, _ := g.logs.find("metrics endpoint")["addr"].(string)
		if body := scrapeTCP(t, metricsAddr); !strings.Contains(body, `gatehouse_directory_up{site="intranet"} 1`) ||
			!strings.Contains(body, `gatehouse_directory_failures_total{site="intranet"} 0`) {
			t.Errorf("metrics lack the directory's:\n%s", grepLines(body, "gatehouse_directory"))
		}
	})

	t.Run("directory down", func(t *testing.T) {
		// alice's credential cache holds her HTTP/localhost ticket by now:
		// she logs in without the KDC.
		dc.stop(t)
		code, body := get(aliceEnv, "/sid/headers")
		if code != 200 {
			t.Fatalf("alice /sid with the directory down: %d %s", code, body)
		}
		saw := decode(body)
		if saw.User == nil || saw.User.Name != `GATEHOUSE\alice` || !slices.Contains(saw.User.Groups, dc.allStaffSID) ||
			!slices.Contains(saw.User.Groups, `NT AUTHORITY\Authenticated Users`) {
			t.Errorf("with the directory down the app saw %+v; want AllStaff as its SID, the well-known groups named", saw.User)
		}
		if code, _ := get(aliceEnv, "/staff/x"); code != 401 {
			t.Errorf("alice /staff (a rule by group name) with the directory down: %d, want 401", code)
		}
		g.waitLog(t, "directory lookup failed")
		g.waitLog(t, "group names unknown")
		if code, out := ghctl(t, "status", "--pid-file", pidFile); code != 0 || !regexp.MustCompile(`(?m)^intranet\s+\S+\s+down\s+\d+\s+\d+\s+1\s+\S`).MatchString(out) {
			t.Errorf("gatehouse status with the directory down: exit %d\n%s", code, out)
		}
		metricsAddr, _ := g.logs.find("metrics endpoint")["addr"].(string)
		if body := scrapeTCP(t, metricsAddr); !strings.Contains(body, `gatehouse_directory_up{site="intranet"} 0`) ||
			!strings.Contains(body, `gatehouse_directory_failures_total{site="intranet"} 1`) {
			t.Errorf("metrics with the directory down:\n%s", grepLines(body, "gatehouse_directory"))
		}
	})
}

// hasLog reports whether a log record's message or reason contains s.
func (g *gh) hasLog(s string) bool {
	for _, r := range g.logs.records() {
		for _, k := range []string{"msg", "reason"} {
			if v, _ := r[k].(string); strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// waitLog waits for a log record whose message or reason contains s (the
// log arrives through a pipe, after the response).
func (g *gh) waitLog(t *testing.T, s string) {
	t.Helper()
	waitFor(t, 30*time.Second, "a log line with "+strconv.Quote(s), func() bool { return g.hasLog(s) })
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
