package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// The Active Directory domain the Samba tests provision.
const (
	adRealm   = "GATEHOUSE.TEST"
	adDomain  = "GATEHOUSE"
	adAdminPW = "Admin-pw-1234!"
	adWebPW   = "Web-pw-1234567!"
)

// adUsers are the domain's users and their passwords.
var adUsers = map[string]string{"alice": "Alice-pw-1234!", "bob": "Bob-pw-1234!"}

// sambaDC is a Samba Active Directory domain controller for one test: a
// domain provisioned in a temp dir (alice in Developers, Developers in
// AllStaff; bob in neither; web holding the HTTP/localhost service
// principal), run inside its own network namespace so its KDC and LDAP
// servers own 88, 389 and 636 there without clashing with anything on
// this machine. Gatehouse and the clients reach it at ns.PeerIP.
type sambaDC struct {
	dir    string
	conf   string // smb.conf
	ns     *netns
	krb5   string // krb5.conf for the clients
	keytab string // HTTP/localhost keys
	// webKeytab holds the same keys as web@GATEHOUSE.TEST's, for a
	// Kerberos bind to the directory.
	webKeytab string
	caFile    string // the CA of the DC's LDAP certificate
	pwFile    string // web's password, for the directory bind
	sid       string // the domain SID
	// allStaffSID is the group AllStaff's.
	allStaffSID string
	cmd         *exec.Cmd
	exited      chan struct{}
	logs        *syncBuffer
	stopped     bool
}

// sambaTool finds samba-tool and the Python that runs it (its #! line:
// the system's, which has the samba module, whatever python3 is first
// on PATH).
func sambaTool(t *testing.T) (tool, python string) {
	t.Helper()
	tool = krbTool("samba-tool")
	samba := krbTool("samba")
	if tool == "" || samba == "" {
		t.Skip("Samba's AD DC is not installed (apt-get install samba samba-ad-dc samba-ad-provision; .ci/run does this)")
	}
	f, err := os.Open(tool)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	python = strings.TrimSpace(strings.TrimPrefix(line, "#!"))
	if fields := strings.Fields(python); len(fields) > 0 {
		python = fields[0]
	}
	if python == "" {
		t.Fatalf("%s: no #! line", tool)
	}
	return tool, python
}

// startSambaDC provisions the domain and starts its DC. It skips the test
// where Samba cannot run: not root (namespaces), Samba or MIT Kerberos's
// clients not installed.
func startSambaDC(t *testing.T) *sambaDC {
	t.Helper()
	tool, python := sambaTool(t)
	if krbTool("kinit") == "" || krbTool("curl") == "" {
		t.Skip("kinit or curl missing (apt-get install krb5-user curl; .ci/run does this)")
	}
	ns := newNetns(t)
	dc := &sambaDC{dir: t.TempDir(), ns: ns, exited: make(chan struct{}), logs: &syncBuffer{}}
	target := filepath.Join(dc.dir, "dc")
	certFile, keyFile := dc.writeTLS(t)
	begin := time.Now()
	// Everything the DC writes stays in target; only the servers it needs.
	opts := []string{
		"interfaces=" + ns.PeerIP + " lo", "bind interfaces only=yes",
		"server services=ldap cldap kdc",
		"tls enabled=yes", "tls keyfile=" + keyFile, "tls certfile=" + certFile, "tls cafile=",
		// A Kerberos bind over TLS needs no SASL security layer, as with
		// Active Directory; Samba asks for one unless told so.
		"ldap server require strong auth=allow_sasl_over_tls",
		"pid directory=" + target, "ncalrpc dir=" + filepath.Join(target, "ncalrpc"),
		"winbindd socket directory=" + filepath.Join(target, "winbindd"),
		"ntp signd socket directory=" + filepath.Join(target, "ntp_signd"),
		"log file=" + filepath.Join(target, "log.%m"),
	}
	args := []string{"domain", "provision", "--targetdir=" + target, "--realm=" + adRealm, "--domain=" + adDomain,
		"--adminpass=" + adAdminPW, "--server-role=dc", "--dns-backend=NONE", "--host-name=dc1"}
	for _, o := range opts {
		args = append(args, "--option="+o)
	}
	if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("samba-tool domain provision: %v\n%s", err, out)
	}
	conf := filepath.Join(target, "etc", "smb.conf")
	dc.conf = conf
	dc.conf = conf
	// Users, groups and the service account in one Python run (each
	// samba-tool call costs a second of interpreter start).
	script := `
import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
import ldb
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
for name, pw in zip(sys.argv[3::2], sys.argv[4::2]):
    db.newuser(name, pw)
db.newgroup("Developers")
db.newgroup("AllStaff")
db.add_remove_group_members("Developers", ["alice"], add_members_operation=True)
db.add_remove_group_members("AllStaff", ["Developers"], add_members_operation=True)
m = ldb.Message()
m.dn = ldb.Dn(db, "CN=web,CN=Users," + str(db.domain_dn()))
m["spn"] = ldb.MessageElement("HTTP/localhost", ldb.FLAG_MOD_REPLACE, "servicePrincipalName")
m["etypes"] = ldb.MessageElement("24", ldb.FLAG_MOD_REPLACE, "msDS-SupportedEncryptionTypes")
db.modify(m)
# Gatehouse reaches the DC by address: a Kerberos bind asks for ldap/<address>.
m = ldb.Message()
m.dn = ldb.Dn(db, "CN=DC1,OU=Domain Controllers," + str(db.domain_dn()))
m["spn"] = ldb.MessageElement("ldap/" + sys.argv[2], ldb.FLAG_MOD_ADD, "servicePrincipalName")
db.modify(m)
from samba.ndr import ndr_unpack
from samba.dcerpc import security
res = db.search(base=db.domain_dn(), expression="(sAMAccountName=AllStaff)", attrs=["objectSid"])
print(db.get_domain_sid(), ndr_unpack(security.dom_sid, res[0]["objectSid"][0]))
`
	pyArgs := []string{"-c", script, conf, ns.PeerIP, "web", adWebPW}
	for u, pw := range adUsers {
		pyArgs = append(pyArgs, u, pw)
	}
	out, err := exec.Command(python, pyArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("create the users: %v\n%s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) == 2 {
		dc.sid, dc.allStaffSID = f[0], f[1]
	} else {
		t.Fatalf("create the users: want the domain's and AllStaff's SIDs, got %s", out)
	}
	dc.webKeytab, dc.keytab = dc.exportKeytab(t, tool, conf)
	dc.pwFile = filepath.Join(dc.dir, "web.pw")
	writeFile(t, dc.pwFile, adWebPW+"\n")
	dc.krb5 = filepath.Join(dc.dir, "krb5.conf")
	writeFile(t, dc.krb5, fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1

[realms]
	%[1]s = {
		kdc = %[2]s
	}

[domain_realm]
	localhost = %[1]s
`, adRealm, ns.PeerIP))
	t.Logf("domain %s (%s) provisioned in %v", adRealm, dc.sid, time.Since(begin).Round(time.Millisecond))

	dc.cmd = exec.Command("ip", "netns", "exec", ns.name, krbTool("samba"), "-i", "-M", "single", "-s", conf)
	dc.cmd.Stdout, dc.cmd.Stderr = dc.logs, dc.logs
	dc.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := dc.cmd.Start(); err != nil {
		t.Fatalf("start samba: %v", err)
	}
	go func() { _ = dc.cmd.Wait(); close(dc.exited) }()
	t.Cleanup(func() {
		dc.stop(t)
		if t.Failed() {
			t.Logf("samba output:\n%s", dc.logs.String())
		}
	})
	waitFor(t, 60*time.Second, "the DC's KDC and LDAP servers", func() bool {
		select {
		case <-dc.exited:
			t.Fatalf("samba exited: %s", dc.logs.String())
		default:
		}
		for _, port := range []string{"88", "636"} {
			c, err := net.DialTimeout("tcp4", net.JoinHostPort(ns.PeerIP, port), time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	t.Logf("DC up at %s after %v", ns.PeerIP, time.Since(begin).Round(time.Millisecond))
	return dc
}

// writeTLS makes a CA and the DC's LDAP certificate for its address.
func (dc *sambaDC) writeTLS(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gatehouse AD Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1.gatehouse.test"},
		DNSNames: []string{"dc1.gatehouse.test"}, IPAddresses: []net.IP{net.ParseIP(dc.ns.PeerIP)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dc.caFile = filepath.Join(dc.dir, "ca.pem")
	certFile, keyFile = filepath.Join(dc.dir, "dc.pem"), filepath.Join(dc.dir, "dc.key")
	writeFile(t, dc.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	kb, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	// Samba refuses a key file others can read.
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// exportKeytab writes the web account's keys, as web's and as
// HTTP/localhost's. samba-tool
// exports an SPN's keys as RC4 only; the account's own export has its AES
// keys, which are the ones the KDC encrypts HTTP/localhost tickets with
// (msDS-SupportedEncryptionTypes is AES). The keys are the same whatever
// the entry's name: setspn and ktpass -mapuser give Windows the same.
func (dc *sambaDC) exportKeytab(t *testing.T, tool, conf string) (web, http string) {
	t.Helper()
	raw := filepath.Join(dc.dir, "web.keytab")
	if out, err := exec.Command(tool, "domain", "exportkeytab", raw, "--principal=web", "-s", conf).CombinedOutput(); err != nil {
		t.Fatalf("samba-tool domain exportkeytab: %v\n%s", err, out)
	}
	kt, err := keytab.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range kt.Entries {
		kt.Entries[i].Principal.Components = []string{"HTTP", "localhost"}
		kt.Entries[i].Principal.NumComponents = 2
		kt.Entries[i].Principal.NameType = nametype.KRB_NT_SRV_INST
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dc.dir, "http.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return raw, path
}

// stop ends the DC (SIGTERM, then SIGKILL) and waits for it.
func (dc *sambaDC) stop(t *testing.T) {
	t.Helper()
	if dc.stopped {
		return
	}
	dc.stopped = true
	_ = dc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dc.exited:
	case <-time.After(10 * time.Second):
		_ = dc.cmd.Process.Kill()
		<-dc.exited
	}
}

// kinit gets user's ticket into a new credential cache and returns the
// environment that uses it.
func (dc *sambaDC) kinit(t *testing.T, user string) []string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "ccache")
	env := append(os.Environ(), "KRB5_CONFIG="+dc.krb5, "KRB5CCNAME=FILE:"+cc)
	cmd := exec.Command(krbTool("kinit"), user+"@"+adRealm)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(adUsers[user] + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit %s: %v\n%s", user, err, out)
	}
	return env
}
