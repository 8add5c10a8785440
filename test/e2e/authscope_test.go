package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"testing"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestKerberosLoginStaysOnItsSite checks that a Negotiate login kept for a
// connection (authPersistNonNTLM) is good only for the site it was made
// on: two sites with their own keytabs share one listener, and after a
// login on site a, a request on the same connection for site b, without
// a token, is refused (it was served as the user), over HTTP/1.1 (in
// cleartext and TLS), HTTP/2 and h2c. HTTP/3 keeps no connection login.
// No KDC is needed: the ticket is made with site a's service key.
func TestKerberosLoginStaysOnItsSite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	keytabA, ktA := writeKeytab(t, filepath.Join(dir, "a.keytab"), "a-secret")
	keytabB, _ := writeKeytab(t, filepath.Join(dir, "b.keytab"), "b-secret")
	users := filepath.Join(dir, "users.htpasswd")
	writeFile(t, users, "")
	site := func(name, keytab string) string {
		return fmt.Sprintf(`  - name: %[1]s
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0, host: %[1]s.test}
      - {scheme: https, address: 127.0.0.1, port: 0, host: %[1]s.test, certificateFile: %[2]s, keyFile: %[3]s}
    applications:
      - {path: /, dir: %[4]s}
    authentication: {keytab: %[5]s, userFile: %[6]s}
`, name, p.certFile, p.keyFile, authApp(t), keytab, users)
	}
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, "protocols: {h2c: true}\nsites:\n"+site("a", keytabA)+site("b", keytabB))
	g := start(t, "", "serve", "--config", cfgFile)

	alice := krbclient.NewWithPassword("alice", kdcRealm, "unused", krbconfig.New())
	token := func() string {
		t.Helper()
		now := time.Now()
		tkt, key, err := messages.NewTicket(alice.Credentials.CName(), kdcRealm,
			types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "HTTP/localhost"), kdcRealm,
			types.NewKrbFlags(), ktA, 18, 1, now, now, now.Add(time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		authz, _, _ := apReqHeader(t, alice, tkt, key, false)
		return authz
	}
	for _, tc := range []struct {
		name, scheme string
		major        int
		tr           *http.Transport
	}{
		{"HTTP/1.1", "http", 1, &http.Transport{MaxConnsPerHost: 1}},
		{"HTTPS/1.1", "https", 1, &http.Transport{MaxConnsPerHost: 1, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: protocols(false, true, false)}},
		{"HTTP/2", "https", 2, &http.Transport{MaxConnsPerHost: 1, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: protocols(true, false, false)}},
		{"h2c", "http", 2, &http.Transport{MaxConnsPerHost: 1, Protocols: protocols(false, false, true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.tr.CloseIdleConnections()
			c := &http.Client{Timeout: 30 * time.Second, Transport: tc.tr}
			addr := g.listenerAddr(t, tc.scheme)
			conns := 0
			do := func(host, authz string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest("GET", tc.scheme+"://"+addr+"/headers", nil)
				req.Host = host
				if authz != "" {
					req.Header.Set("Authorization", authz)
				}
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) {
						if !info.Reused {
							conns++
						}
					},
				}))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", host, err)
				}
				defer resp.Body.Close()
				if resp.ProtoMajor != tc.major {
					t.Fatalf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, tc.major)
				}
				var saw appSaw
				if resp.StatusCode == 200 {
					if err := json.NewDecoder(resp.Body).Decode(&saw); err != nil {
						t.Fatal(err)
					}
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				if saw.User == nil {
					return resp.StatusCode, ""
				}
				return resp.StatusCode, saw.User.Name
			}
			if code, user := do("a.test", token()); code != 200 || user != "alice@GH.TEST" {
				t.Fatalf("login on site a: %d as %q", code, user)
			}
			if code, user := do("a.test", ""); code != 200 || user != "alice@GH.TEST" {
				t.Errorf("site a again on the same connection: %d as %q, want alice", code, user)
			}
			if code, user := do("b.test", ""); code != 401 {
				t.Errorf("site b on site a's connection: %d as %q, want 401", code, user)
			}
			if code, user := do("a.test", ""); code != 200 || user != "alice@GH.TEST" {
				t.Errorf("site a after site b on the same connection: %d as %q, want alice", code, user)
			}
			if conns != 1 {
				t.Errorf("the requests used %d connections, want 1", conns)
			}
		})
	}
}

// writeKeytab writes a keytab with HTTP/localhost's key made from password.
func writeKeytab(t *testing.T, path, password string) (string, *keytab.Keytab) {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", kdcRealm, password, time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
	return path, kt
}

// protocols returns the protocol set of a client transport: HTTP/2 over
// TLS, HTTP/1.1, or HTTP/2 in cleartext (h2c).
func protocols(h2, h1, h2c bool) *http.Protocols {
	var p http.Protocols
	p.SetHTTP2(h2)
	p.SetHTTP1(h1)
	p.SetUnencryptedHTTP2(h2c)
	return &p
}
