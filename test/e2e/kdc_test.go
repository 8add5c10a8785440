package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kdcRealm is the throwaway realm the Kerberos tests create.
const kdcRealm = "GH.TEST"

// kdc is an MIT Kerberos KDC with its own realm, database and config in a
// temp dir, listening on a free loopback port. It is stopped by pid at the
// end of the test.
type kdc struct {
	dir    string
	env    []string // KRB5_CONFIG, KRB5_KDC_PROFILE for every Kerberos command
	conf   string   // krb5.conf path
	keytab string   // HTTP/localhost keytab
	port   int
}

// krbTool finds an MIT Kerberos program (the admin ones live in /usr/sbin).
func krbTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// freeLoopbackPort returns a port free for both TCP and UDP on 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for the KDC")
	return 0
}

// startKDC creates the realm GH.TEST with the service principal
// HTTP/localhost (its keys in k.keytab) and the given users (name →
// password), starts krb5kdc and waits until it accepts connections. It
// skips the test when MIT Kerberos is not installed (.ci/run installs it).
func startKDC(t *testing.T, users map[string]string) *kdc {
	t.Helper()
	tools := map[string]string{}
	for _, n := range []string{"kdb5_util", "kadmin.local", "krb5kdc", "kinit"} {
		if tools[n] = krbTool(n); tools[n] == "" {
			t.Skipf("MIT Kerberos is not installed (%s missing): apt-get install krb5-kdc krb5-admin-server krb5-user (.ci/run does this)", n)
		}
	}
	k := &kdc{dir: t.TempDir()}
	k.port = freeLoopbackPort(t)
	k.conf = filepath.Join(k.dir, "krb5.conf")
	k.keytab = filepath.Join(k.dir, "http.keytab")
	writeFile(t, k.conf, fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	ticket_lifetime = 1h
	forwardable = false

[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[2]d
	}

[domain_realm]
	localhost = %[1]s
`, kdcRealm, k.port))
	kdcConf := filepath.Join(k.dir, "kdc.conf")
	writeFile(t, kdcConf, fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d

[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		max_life = 1h
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	}

[logging]
	kdc = FILE:%[3]s/kdc.log
`, kdcRealm, k.port, k.dir))
	writeFile(t, filepath.Join(k.dir, "kadm5.acl"), "")
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.conf, "KRB5_KDC_PROFILE="+kdcConf, "KRB5CCNAME=FILE:"+filepath.Join(k.dir, "unused-ccache"))

	k.run(t, tools["kdb5_util"], "-r", kdcRealm, "-P", "master-password", "create", "-s")
	queries := []string{"addprinc -randkey HTTP/localhost", "ktadd -k " + k.keytab + " HTTP/localhost"}
	for u, pw := range users {
		queries = append(queries, fmt.Sprintf("addprinc -pw %s %s", pw, u))
	}
	for _, q := range queries {
		k.run(t, tools["kadmin.local"], "-r", kdcRealm, "-q", q)
	}

	cmd := exec.Command(tools["krb5kdc"], "-n", "-r", kdcRealm)
	cmd.Env = k.env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start krb5kdc: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(k.dir, "kdc.log"))
			t.Logf("krb5kdc output:\n%s\nkdc.log:\n%s", logs.String(), b)
		}
	})
	waitFor(t, 10*time.Second, "the KDC to accept connections", func() bool {
		select {
		case <-exited:
			t.Fatalf("krb5kdc exited: %s", logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", k.port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return k
}

func (k *kdc) run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = k.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// kinit gets a ticket for user into a new credential cache and returns the
// environment that uses it (KRB5CCNAME).
func (k *kdc) kinit(t *testing.T, user, password string) []string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "ccache")
	env := append(append([]string{}, k.env...), "KRB5CCNAME=FILE:"+cc)
	cmd := exec.Command(krbTool("kinit"), user+"@"+kdcRealm)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit %s: %v\n%s", user, err, out)
	}
	return env
}
