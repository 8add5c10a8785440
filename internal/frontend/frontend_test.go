package frontend_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// twoSites is the matrix config: site a (exact host, app / and virtual app
// /api, W3C log), site b (wildcard host, JSON log), no default site.
const twoSites = `
shutdownTimeout: 2s
protocols: {h2c: true, http3: true}
sites:
  - name: a
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0, host: a.test}
      - name: https
        scheme: https
        address: 127.0.0.1
        port: 0
        host: a.test
        certificateFile: $CERT
        keyFile: $KEY
        clientCertificate: optional
        clientCaFile: $CA
    applications:
      - {path: /, dir: a-root}
      - {path: /api, dir: a-api}
    accessLog: {path: logs/a.log}
  - name: b
    bindings:
      - {name: b-http, scheme: http, address: 127.0.0.1, port: 0, host: "*.b.test"}
      - {name: b-https, scheme: https, address: 127.0.0.1, port: 0, host: "*.b.test", certificateFile: $CERT, keyFile: $KEY}
    applications:
      - {path: /, dir: b-root}
    accessLog: {path: logs/b.jsonl, format: json}
`

func bindingFor(m mode) string {
	if m.tls() {
		return "https"
	}
	return "http"
}

func TestRoutingMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "a-root", "a-api", "b-root")
	o := newOpener()
	s := start(t, e.config(t, twoSites), o)
	if got := o.get("a/api").spec; got.HTTPSPort != 0 || got.Dir != filepath.Join(e.dir, "a-api") {
		t.Errorf("spec = %+v (port 0 config: HTTPSPort 0)", got)
	}
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, true)
			tests := []struct {
				host, path string
				status     int
				site, app  string
			}{
				{"a.test", "/", 200, "a", "/"},
				{"A.Test", "/API/v1/x", 200, "a", "/api"},
				{"a.test", "/api", 200, "a", "/api"},
				{"a.test", "/apix", 200, "a", "/"},
				{"x.b.test", "/hello", 200, "b", "/"},
				{"deep.x.B.test", "/", 200, "b", "/"},
				{"b.test", "/", 404, "", ""},
				{"unknown.test", "/", 404, "", ""},
			}
			for _, tt := range tests {
				res, body := get(t, c, m.url(tt.host, tt.path+"?q=1"))
				if res.StatusCode != tt.status {
					t.Errorf("%s%s: status %d, want %d (%s)", tt.host, tt.path, res.StatusCode, tt.status, body)
					continue
				}
				if tt.status != 200 {
					if strings.Contains(body, "a.test") || strings.Contains(body, "b.test") || strings.Contains(body, "site") {
						t.Errorf("404 page reveals something: %q", body)
					}
					continue
				}
				got := decode(t, body)
				if got.Site != tt.site || got.App != tt.app || got.Path != tt.path || got.Query != "q=1" {
					t.Errorf("%s%s went to %s%s with path %q query %q", tt.host, tt.path, got.Site, got.App, got.Path, got.Query)
				}
				if got.Proto != m.proto() || got.TLS != m.tls() {
					t.Errorf("%s: app saw HTTP/%d TLS=%v", tt.host, got.Proto, got.TLS)
				}
				if m.tls() && tt.site == "a" && got.PeerCN != "client one" {
					t.Errorf("client certificate did not reach the app: PeerCN %q", got.PeerCN)
				}
				if alt := res.Header.Get("Alt-Svc"); (m == https1 || m == h2) != strings.HasPrefix(alt, `h3=":`) {
					t.Errorf("Alt-Svc = %q", alt)
				}
			}
		})
	}
}

// TestClientCertificateRequired checks the TLS side of client certificates:
// required means no handshake without one, for TCP and QUIC.
func TestClientCertificateRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "app")
	o := newOpener()
	s := start(t, e.config(t, `
protocols: {http3: true}
sites:
  - name: s
    bindings:
      - {name: tls, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY, clientCertificate: required, clientCaFile: $CA}
    applications: [{path: /, dir: app}]
`), o)
	for _, m := range []mode{https1, h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			addr := addrOf(t, s, "tls", m)
			res, body := get(t, client(t, m, addr, e.pki, true), m.url("localhost", "/"))
			if res.StatusCode != 200 || decode(t, body).PeerCN != "client one" {
				t.Fatalf("with certificate: %d %s", res.StatusCode, body)
			}
			if res, err := client(t, m, addr, e.pki, false).Get(m.url("localhost", "/")); err == nil {
				res.Body.Close()
				t.Fatalf("without certificate: status %d, want a handshake failure", res.StatusCode)
			}
		})
	}
}

// TestAccessLogs parses both log formats back.
func TestAccessLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "a-root", "a-api", "b-root")
	o := newOpener()
	s := start(t, e.config(t, twoSites), o)
	c := client(t, h1, addrOf(t, s, "http", h1), e.pki, false)
	req, _ := http.NewRequest("POST", "http://a.test/api/some%20thing?x=1&y=two", strings.NewReader("hello"))
	req.Header.Set("User-Agent", "Test Agent/1.0 (X11)")
	req.Header.Set("Referer", "http://ref.test/")
	if res, body := do(t, c, req); res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	cb := client(t, h1, addrOf(t, s, "b-http", h1), e.pki, false)
	if res, _ := get(t, cb, "http://x.b.test/nothing-here"); res.StatusCode != 200 {
		t.Fatalf("b status %d", res.StatusCode)
	}
	if err := s.stop(); err != nil { // flush and close the logs
		t.Fatal(err)
	}

	// W3C: directives, then one line whose fields follow #Fields.
	f, err := os.Open(filepath.Join(e.dir, "logs", "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fields []string
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "#Fields: "):
			fields = strings.Fields(strings.TrimPrefix(line, "#Fields: "))
		case strings.HasPrefix(line, "#"):
		default:
			vals := strings.Split(line, " ")
			if len(vals) != len(fields) {
				t.Fatalf("line has %d fields, #Fields %d: %q", len(vals), len(fields), line)
			}
			row := map[string]string{}
			for i, f := range fields {
				row[f] = vals[i]
			}
			rows = append(rows, row)
		}
	}
	if len(rows) != 1 {
		t.Fatalf("W3C log rows = %d, want 1", len(rows))
	}
	want := map[string]string{
		"s-ip": "127.0.0.1", "cs-method": "POST", "cs-uri-stem": "/api/some+thing", "cs-uri-query": "x=1&y=two",
		"cs-username": "-", "c-ip": "127.0.0.1", "cs(User-Agent)": "Test+Agent/1.0+(X11)",
		"cs(Referer)": "http://ref.test/", "sc-status": "200", "sc-substatus": "0", "sc-win32-status": "0", "cs-bytes": "",
	}
	for k, v := range want {
		if k == "cs-bytes" {
			continue
		}
		if rows[0][k] != v {
			t.Errorf("%s = %q, want %q", k, rows[0][k], v)
		}
	}
	if rows[0]["sc-bytes"] == "0" || rows[0]["time-taken"] == "" || rows[0]["date"] == "" || rows[0]["s-port"] == "" {
		t.Errorf("row = %v", rows[0])
	}

	data, err := os.ReadFile(filepath.Join(e.dir, "logs", "b.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("JSON log lines = %d: %q", len(lines), data)
	}
	var j struct {
		Method    string `json:"method"`
		Path      string `json:"uri_stem"`
		Status    int    `json:"status"`
		Host      string `json:"host"`
		ClientIP  string `json:"c_ip"`
		BytesSent int64  `json:"bytes_sent"`
		UserAgent string `json:"user_agent"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &j); err != nil {
		t.Fatal(err)
	}
	if j.Method != "GET" || j.Path != "/nothing-here" || j.Status != 200 || j.Host != "x.b.test" ||
		j.ClientIP != "127.0.0.1" || j.BytesSent == 0 || j.UserAgent == "" {
		t.Errorf("JSON entry = %+v", j)
	}
}
