package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// pki is a throw-away CA with a server and a client certificate.
type pki struct {
	caFile, certFile, keyFile string
	client                    tls.Certificate
	roots                     *x509.CertPool
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Gatehouse Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	srvDER, srvKey := issue(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "a.example.test"},
		DNSNames: []string{"a.example.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	cliDER, cliKey := issue(&x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	p := &pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	pemOut := func(path, typ string, der []byte) {
		writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})))
	}
	pemOut(p.caFile, "CERTIFICATE", caDER)
	pemOut(p.certFile, "CERTIFICATE", srvDER)
	kb, _ := x509.MarshalECPrivateKey(srvKey)
	pemOut(p.keyFile, "EC PRIVATE KEY", kb)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(ca)
	return p
}

// listeners maps gatehouse's "listening" records: listener key → address.
func (g *gh) listeners() map[string]string {
	out := map[string]string{}
	for _, r := range g.logs.records() {
		if r["msg"] == "listening" {
			key, _ := r["listener"].(string)
			addr, _ := r["addr"].(string)
			out[key] = addr
		}
	}
	return out
}

// listenerAddr waits for the "listening" record of a listener with the
// given scheme and returns its address. start returns at the first such
// record; the others are logged just after it.
func (g *gh) listenerAddr(t *testing.T, scheme string) string {
	t.Helper()
	var addr string
	waitFor(t, 10*time.Second, "a "+scheme+" listener in the log", func() bool {
		for k, a := range g.listeners() {
			if strings.HasPrefix(k, scheme+"://") {
				addr = a
				return true
			}
		}
		return false
	})
	return addr
}

func greetingApp(t *testing.T, greeting string) string {
	return writeApp(t, testappAttrs(""), fmt.Sprintf(`<environmentVariables><environmentVariable name="GREETING" value=%q /></environmentVariables>`, greeting))
}

// Two sites told apart by host name, a virtual application, HTTPS with
// HTTP/2 and a client certificate, a limit, the access log and a reload
// with an invalid file — all through the real binary.
func TestFrontDoorSites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	appA, appAPI, appB := greetingApp(t, "A"), greetingApp(t, "API"), greetingApp(t, "B")
	accessLog := filepath.Join(dir, "logs", "a.log")
	cfg := fmt.Sprintf(`shutdownTimeout: 10s
protocols: {http3: true}
limits:
  maxAllowedContentLength: 1000
sites:
  - name: a
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0, host: a.example.test}
      - {scheme: https, address: 127.0.0.1, port: 0, host: a.example.test,
         certificateFile: %s, keyFile: %s, clientCertificate: optional, clientCaFile: %s}
    applications:
      - {path: /, dir: %s}
      - {path: /api, dir: %s}
    accessLog: {path: %s}
  - name: b
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0, host: "*.b.example.test"}
    applications:
      - {path: /, dir: %s}
`, p.certFile, p.keyFile, p.caFile, appA, appAPI, accessLog, appB)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, cfg)
	if out, err := exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	pidFile := filepath.Join(dir, "gh.pid")
	// Registered first, so it runs after gatehouse has been stopped.
	t.Cleanup(func() {
		for _, d := range []string{appA, appAPI, appB} {
			waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(d)) == 0 })
		}
	})
	g := start(t, "", "serve", "--config", cfgFile, "--pid-file", pidFile)
	httpAddr := g.listenerAddr(t, "http")
	hostGet := func(c *http.Client, scheme, addr, host, path string, hdr ...string) (int, string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest("GET", scheme+"://"+addr+path, nil)
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}

	// Host routing: exact, wildcard, unknown.
	for _, tc := range []struct{ host, path, want string }{
		{"a.example.test", "/env?name=GREETING", "A"},
		{"A.Example.Test:80", "/env?name=GREETING", "A"},
		{"x.b.example.test", "/env?name=GREETING", "B"},
		{"a.example.test", "/api/env?name=GREETING", "API"},
		{"a.example.test", "/API/env?name=ASPNETCORE_APPL_PATH", "/api"},
	} {
		if code, body, _ := hostGet(client, "http", httpAddr, tc.host, tc.path); code != 200 || body != tc.want {
			t.Errorf("%s%s = %d %q, want %q", tc.host, tc.path, code, body, tc.want)
		}
	}
	code, body, _ := hostGet(client, "http", httpAddr, "unknown.test", "/env?name=GREETING")
	if code != 404 || strings.Contains(body, "example.test") {
		t.Errorf("unknown host = %d %q, want a 404 that names no site", code, body)
	}

	// The virtual application sees the full path, as ANCM delivers it.
	_, body, _ = hostGet(client, "http", httpAddr, "a.example.test", "/api/headers", "MS-ASPNETCORE-CLIENTCERT", "forged")
	var h struct {
		PathBase    string `json:"path_base"`
		Path        string `json:"path"`
		Scheme      string `json:"scheme"`
		CertSubject string `json:"client_cert_subject"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if h.PathBase != "/api" || h.Path != "/headers" || h.Scheme != "http" || h.CertSubject != "" {
		t.Errorf("over http the app saw %+v, want path base /api, path /headers, scheme http, no (forged) certificate", h)
	}

	// HTTPS with HTTP/2 and a client certificate that reaches the app.
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: p.roots, ServerName: "a.example.test", Certificates: []tls.Certificate{p.client}},
		ForceAttemptHTTP2: true,
	}}
	httpsAddr := g.listenerAddr(t, "https")
	code, body, resp := hostGet(tlsClient, "https", httpsAddr, "a.example.test", "/api/headers")
	if code != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("https = %d over %s, want 200 over HTTP/2: %s", code, resp.Proto, body)
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if h.Scheme != "https" || !strings.Contains(h.CertSubject, "alice") {
		t.Errorf("over https the app saw scheme %q, certificate %q; want https and alice", h.Scheme, h.CertSubject)
	}

	// HTTP/3 on the same port over UDP, announced with Alt-Svc.
	if alt := resp.Header.Get("Alt-Svc"); !strings.Contains(alt, "h3=") {
		t.Errorf("Alt-Svc = %q, want h3 announced", alt)
	}
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots, ServerName: "a.example.test", Certificates: []tls.Certificate{p.client}}}
	defer h3.Close()
	code, body, resp = hostGet(&http.Client{Timeout: 10 * time.Second, Transport: h3}, "https", httpsAddr, "a.example.test", "/api/headers")
	if code != 200 || resp.ProtoMajor != 3 {
		t.Fatalf("http/3 = %d over %s, want 200 over HTTP/3: %s", code, resp.Proto, body)
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || !strings.Contains(h.CertSubject, "alice") {
		t.Errorf("over HTTP/3 the app saw certificate %q (%v), want alice", h.CertSubject, err)
	}

	// A body over maxAllowedContentLength never reaches the app.
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/echo", strings.NewReader(strings.Repeat("x", 2000)))
	req.Host = "a.example.test"
	if resp, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("2000-byte body = %d, want 413", resp.StatusCode)
		}
	}

	// The access log reads back as W3C extended format.
	waitFor(t, 5*time.Second, "access log lines", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Count(string(b), "\n") >= 8
	})
	f, err := os.Open(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []string
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#Fields: "); ok {
			fields = strings.Fields(rest)
			continue
		}
		if strings.HasPrefix(line, "#") || fields == nil {
			continue
		}
		vals := strings.Fields(line)
		if len(vals) != len(fields) {
			t.Fatalf("access log line has %d fields, header has %d: %q", len(vals), len(fields), line)
		}
		row := map[string]string{}
		for i, f := range fields {
			row[f] = vals[i]
		}
		rows = append(rows, row)
	}
	var saw200, saw413 bool
	for _, r := range rows {
		saw200 = saw200 || (r["cs-uri-stem"] == "/api/headers" && r["sc-status"] == "200" && r["c-ip"] == "127.0.0.1")
		saw413 = saw413 || (r["cs-method"] == "POST" && r["sc-status"] == "413")
	}
	if !saw200 || !saw413 {
		t.Errorf("access log lacks the 200 for /api/headers or the 413: %v", rows)
	}

	// An invalid new file is refused and the old configuration keeps serving.
	writeFile(t, cfgFile, cfg+"bogusKey: 1\n")
	if out, err := exec.Command(gatehouseBin, "reload", "--pid-file", pidFile).CombinedOutput(); err == nil {
		t.Fatalf("rejected reload exited 0:\n%s", out)
	}
	waitFor(t, 10*time.Second, "the rejected reload", func() bool {
		rec := g.logs.find("reload rejected")
		return rec != nil && strings.Contains(fmt.Sprint(rec["err"]), "gatehouse.yaml:")
	})
	if code, body, _ := hostGet(client, "http", httpAddr, "x.b.example.test", "/env?name=GREETING"); code != 200 || body != "B" {
		t.Errorf("after a rejected reload = %d %q", code, body)
	}
	// A valid one applies: site b now answers for c.example.test too.
	writeFile(t, cfgFile, strings.Replace(cfg, `host: "*.b.example.test"}`, `host: "*.b.example.test"}
      - {scheme: http, address: 127.0.0.1, port: 0, host: c.example.test}`, 1))
	if out, err := exec.Command(gatehouseBin, "reload", "--pid-file", pidFile).CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the new binding", func() bool {
		code, body, _ := hostGet(client, "http", httpAddr, "c.example.test", "/env?name=GREETING")
		return code == 200 && body == "B"
	})

	// TLS in the metrics (admin socket beside the pid file): handshakes of
	// the https requests above, and the certificate's expiry.
	metricsBody := scrapeUnix(t, strings.TrimSuffix(pidFile, ".pid")+".sock")
	for _, want := range []string{`gatehouse_tls_handshakes_total{listener="https://`, `gatehouse_tls_certificate_expiry_timestamp_seconds{host="a.example.test"`} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
