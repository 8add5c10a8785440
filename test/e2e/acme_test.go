package e2e

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/ocsp"
)

// pebble is a running Pebble ACME server (github.com/letsencrypt/pebble,
// built from the module cache) that validates challenges for real: its
// DNS answers 127.0.0.1 for every name, and it connects to httpPort
// (http-01) and tlsPort (tls-alpn-01) there, the ports the test's
// Gatehouse listens on.
type pebble struct {
	dir      string         // the ACME directory URL
	minica   string         // PEM file of the CA of Pebble's own HTTPS certificate
	minicaCP *x509.CertPool // the same, loaded
	root     *x509.CertPool // the root Pebble issues under
	log      *syncBuffer
	// ocsp answers "good" for every certificate Pebble issues (it has
	// no responder of its own; its certificates name this one).
	ocsp *ocspResponder
}

// ocspResponder signs "good" OCSP responses with Pebble's intermediate,
// once it is known.
type ocspResponder struct {
	mu     sync.Mutex
	issuer *x509.Certificate
	key    crypto.Signer
	served atomic.Int32 // responses sent
}

func (o *ocspResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	issuer, key := o.issuer, o.key
	o.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || issuer == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Valid for less than the certificates' 60 s: a staple must not
	// outlive its certificate.
	now := time.Now().Truncate(time.Second)
	resp, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
		ThisUpdate: now, NextUpdate: now.Add(30 * time.Second)}, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	o.served.Add(1)
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(resp)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDNS serves A 127.0.0.1 for every name (and no other record) over
// TCP, as Pebble asks, on a port of 127.0.0.1 until the test ends; it
// returns the address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			for _, qq := range q.Question {
				if qq.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
						A:   net.IPv4(127, 0, 0, 1),
					})
				}
			}
			_ = w.WriteMsg(m)
		})}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("dns server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
	})
	return ln.Addr().String()
}

// startPebble builds Pebble from the module cache (go.mod names it as a
// tool) and runs it on loopback until the test ends. Certificates it
// issues are valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	tmp := t.TempDir()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("locate pebble in the module cache: %v", err)
	}
	modDir := strings.TrimSpace(string(out))
	bin := filepath.Join(tmp, "pebble")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	dnsAddr := startDNS(t)
	acmePort, mgmtPort := freePort(t), freePort(t)
	ocspLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	responder := &ocspResponder{}
	ocspSrv := &http.Server{Handler: responder, ReadHeaderTimeout: 5 * time.Second}
	ocspDone := make(chan struct{})
	go func() { _ = ocspSrv.Serve(ocspLn); close(ocspDone) }()
	t.Cleanup(func() { _ = ocspSrv.Close(); <-ocspDone })
	certs := filepath.Join(modDir, "test", "certs")
	cfg := fmt.Sprintf(`{"pebble": {
  "listenAddress": "127.0.0.1:%d",
  "managementListenAddress": "127.0.0.1:%d",
  "certificate": %q,
  "privateKey": %q,
  "httpPort": %d,
  "tlsPort": %d,
  "ocspResponderURL": "http://%s/",
  "externalAccountBindingRequired": false,
  "retryAfter": {"authz": 0, "order": 0},
  "keyAlgorithm": "rsa",
  "profiles": {"default": {"description": "short-lived", "validityPeriod": %d}}
}}`, acmePort, mgmtPort, filepath.Join(certs, "localhost", "cert.pem"), filepath.Join(certs, "localhost", "key.pem"),
		httpPort, tlsPort, ocspLn.Addr(), int(validity/time.Second))
	cfgFile := filepath.Join(tmp, "pebble.json")
	writeFile(t, cfgFile, cfg)
	p := &pebble{dir: fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort), minica: filepath.Join(certs, "pebble.minica.pem"), log: &syncBuffer{}, ocsp: responder}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dnsAddr, "-strict=false")
	// Challenges are validated for real, without Pebble's random delays;
	// every nonce is good, so the run does not depend on retries.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.log.String())
		}
	})
	minica, err := os.ReadFile(p.minica)
	if err != nil {
		t.Fatal(err)
	}
	p.minicaCP = x509.NewCertPool()
	p.minicaCP.AppendCertsFromPEM(minica)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.minicaCP}}}
	defer hc.CloseIdleConnections()
	// Pebble makes a new root and intermediate at every start: fetch them
	// once it answers.
	fetch := func(path string) []byte {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/%s", mgmtPort, path))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			return nil
		}
		return b
	}
	var rootPEM []byte
	waitFor(t, 15*time.Second, "pebble to serve its root", func() bool {
		select {
		case <-exited:
			t.Fatalf("pebble exited:\n%s", p.log.String())
		default:
		}
		rootPEM = fetch("roots/0")
		return rootPEM != nil
	})
	p.root = x509.NewCertPool()
	if !p.root.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root is not PEM: %q", rootPEM)
	}
	certBlock, _ := pem.Decode(fetch("intermediates/0"))
	keyBlock, _ := pem.Decode(fetch("intermediate-keys/0"))
	if certBlock == nil || keyBlock == nil {
		t.Fatal("pebble's intermediate or its key is missing")
	}
	issuer, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	responder.mu.Lock()
	responder.issuer, responder.key = issuer, key
	responder.mu.Unlock()
	return p
}

// leaf dials addr for name and returns the certificate served, verified
// against Pebble's root; an error while there is none yet (or it does not
// chain to that root).
func (p *pebble) leaf(addr, name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: p.root, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitLeaf waits until addr serves a certificate for name that chains to
// Pebble's root and whose serial is not old (nil: any).
func (p *pebble) waitLeaf(t *testing.T, addr, name string, old *big.Int, within time.Duration) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	var last error
	deadline := time.Now().Add(within)
	for {
		c, err := p.leaf(addr, name)
		if err == nil && (old == nil || c.SerialNumber.Cmp(old) != 0) {
			cert = c
			break
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("no new certificate for %s at %s within %s (last error: %v)", name, addr, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cert.VerifyHostname(name); err != nil {
		t.Fatalf("certificate for %s: %v", name, err)
	}
	return cert
}

// hasRecord reports whether gatehouse logged msg with attribute key=value.
func hasRecord(logs *syncBuffer, msg, key, value string) bool {
	for _, r := range logs.records() {
		if r["msg"] == msg && r[key] == value {
			return true
		}
	}
	return false
}

// stored reports whether a file named name lies under dir.
func stored(dir, name string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = true
		}
		return nil
	})
	return found
}

// Automatic HTTPS against a real ACME server: a binding with certificate:
// auto gets its certificate through http-01 (answered by the front door
// before routing, with redirectToHttps on) and through tls-alpn-01
// (answered in the TLS handshake); the certificate chains to Pebble's
// root and is stapled with its OCSP response; a renewal serves new
// handshakes while an open connection goes on; a name a reload adds is
// obtained too.
func TestACME(t *testing.T) {
	t.Parallel()
	httpPort, httpsPort := freePort(t), freePort(t)
	// Certificates live 60 s: renewalWindowRatio 0.9 renews them after 6 s.
	p := startPebble(t, httpPort, httpsPort, 60*time.Second)
	httpsAddr := "127.0.0.1:" + strconv.Itoa(httpsPort)
	app := greetingApp(t, "hello")
	t.Cleanup(func() {
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(app)) == 0 })
	})

	t.Run("http-01", func(t *testing.T) {
		dir := t.TempDir()
		const name = "h.gatehouse.test"
		cfgFile := filepath.Join(dir, "gatehouse.yaml")
		writeFile(t, cfgFile, fmt.Sprintf(`shutdownTimeout: 5s
acme:
  directory: %s
  email: admin@gatehouse.test
  caRootFile: %s
  challenges: [http-01]
  renewCheckInterval: 1s
sites:
  - name: h
    redirectToHttps: true
    bindings:
      - {scheme: http, address: 127.0.0.1, port: %d, host: %s}
      - {scheme: https, address: 127.0.0.1, port: %d, host: %s, certificate: auto}
    applications:
      - {path: /, dir: %s}
`, p.dir, p.minica, httpPort, name, httpsPort, name, app))
		out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput()
		if want := "automatic HTTPS: " + name + " from " + p.dir + " (challenges http-01), stored in " + filepath.Join(dir, "acme"); err != nil || !strings.Contains(string(out), want) {
			t.Errorf("check: %v, want a line %q:\n%s", err, want, out)
		}
		g := start(t, "", "serve", "--config", cfgFile)
		leaf := p.waitLeaf(t, httpsAddr, name, nil, 30*time.Second)
		if !hasRecord(g.logs, "served key authentication", "challenge", "http-01") {
			t.Errorf("no http-01 key authorization in the log")
		}
		if !stored(filepath.Join(dir, "acme"), name+".crt") {
			t.Errorf("%s.crt not stored under the default storage %s", name, filepath.Join(dir, "acme"))
		}
		// The handshake staples a good OCSP response for the certificate.
		c, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: name, RootCAs: p.root})
		if err != nil {
			t.Fatal(err)
		}
		st := c.ConnectionState()
		c.Close()
		if len(st.OCSPResponse) == 0 {
			t.Errorf("no OCSP staple (responses the responder sent: %d)", p.ocsp.served.Load())
		} else if r, err := ocsp.ParseResponseForCert(st.OCSPResponse, leaf, st.VerifiedChains[0][1]); err != nil || r.Status != ocsp.Good {
			t.Errorf("OCSP staple: %v, status %v; want good", err, r)
		}

		// The redirect to https still applies to every other request.
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/x", nil)
		req.Host = name
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://" + name + ":" + strconv.Itoa(httpsPort) + "/x"; resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("http GET = %d to %q, want 301 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		// And the site answers over https with the certificate.
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: p.root},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
			},
		}}
		defer hc.CloseIdleConnections()
		resp, err = hc.Get("https://" + name + "/env?name=GREETING")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello" || resp.ProtoMajor != 2 {
			t.Errorf("https GET = %d %s %q, want 200 HTTP/2 \"hello\"", resp.StatusCode, resp.Proto, body)
		}
		g.stop(30 * time.Second)
	})

	t.Run("tls-alpn-01 and renewal", func(t *testing.T) {
		dir := t.TempDir()
		const name = "t.gatehouse.test"
		storage := filepath.Join(dir, "certs")
		cfgFile := filepath.Join(dir, "gatehouse.yaml")
		config := func(extra string) string {
			return fmt.Sprintf(`shutdownTimeout: 5s
acme:
  directory: %s
  caRootFile: %s
  storage: certs
  challenges: [tls-alpn-01]
  renewCheckInterval: 1s
  renewalWindowRatio: 0.9
sites:
  - name: t
    bindings:
      - {scheme: https, address: 127.0.0.1, port: %d, host: %s, certificate: auto}%s
    applications:
      - {path: /, dir: %s}
`, p.dir, p.minica, httpsPort, name, extra, app)
		}
		writeFile(t, cfgFile, config(""))
		g := start(t, "", "serve", "--config", cfgFile)
		first := p.waitLeaf(t, httpsAddr, name, nil, 30*time.Second)
		if !hasRecord(g.logs, "served key authentication certificate", "challenge", "tls-alpn-01") {
			t.Errorf("no tls-alpn-01 key authorization in the log")
		}
		if !stored(storage, name+".crt") {
			t.Errorf("%s.crt not stored under %s", name, storage)
		}

		// A connection opened on the first certificate.
		c, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: name, RootCAs: p.root, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		get := func() string {
			t.Helper()
			if _, err := io.WriteString(c, "GET /env?name=GREETING HTTP/1.1\r\nHost: "+name+"\r\n\r\n"); err != nil {
				t.Fatalf("write on the open connection: %v", err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read on the open connection: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		if got := get(); got != "200 hello" {
			t.Fatalf("GET = %q, want 200 hello", got)
		}

		// Renewed: new handshakes get a new certificate, chained to the root.
		p.waitLeaf(t, httpsAddr, name, first.SerialNumber, 30*time.Second)
		// The open connection goes on, on its certificate.
		if got := get(); got != "200 hello" {
			t.Errorf("GET on the connection opened before the renewal = %q, want 200 hello", got)
		}
		if s := c.ConnectionState().PeerCertificates[0].SerialNumber; s.Cmp(first.SerialNumber) != 0 {
			t.Errorf("open connection's certificate changed")
		}

		// A name added by a reload gets its certificate too.
		const added = "u.gatehouse.test"
		writeFile(t, cfgFile, config(fmt.Sprintf("\n      - {scheme: https, address: 127.0.0.1, port: %d, host: %s, certificate: auto}", httpsPort, added)))
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.waitLeaf(t, httpsAddr, added, nil, 30*time.Second)
		g.stop(30 * time.Second)
	})
}

// A broken acme setting or certificate value fails at load, naming
// file:line, in check and in serve.
func TestACMEBrokenSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := greetingApp(t, "hello")
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`acme:
  directory: http://acme.example.com/directory
sites:
  - name: a
    bindings:
      - {scheme: https, address: 127.0.0.1, port: 0, host: a.example.com, certificate: atuo}
      - {scheme: https, address: 127.0.0.1, port: 0, host: b.example.com, certificate: auto}
    applications:
      - {path: /, dir: %s}
`, app))
	for _, args := range [][]string{{"check", cfgFile}, withRoot([]string{"serve", "--config", cfgFile})} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, gatehouseBin, args...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("%s: %v, want exit status 3\n%s", args[0], err, out)
		}
		for _, want := range []string{
			cfgFile + `:6: binding a/0: certificate "atuo": want auto`,
			cfgFile + `:2: acme.directory "http://acme.example.com/directory": want the https URL`,
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s output lacks %q:\n%s", args[0], want, out)
			}
		}
	}
}
