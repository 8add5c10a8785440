package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/quic-go/quic-go/http3"
)

// iisApp makes an app folder holding testdata/iis/<name>.web.config as its
// web.config, and the files of the folder testdata/iis/<name>, if there is
// one (what the publish put beside it). The file's processPath is
// %TESTAPP%, which gatehouse expands from its environment (iisEnv).
func iisApp(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "iis", name+".web.config"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web.config"), string(b))
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "iis", name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return dir
}

func iisEnv() []string { return []string{"TESTAPP=" + testappBin} }

// iisSite is a gatehouse serving the testdata/iis apps in one site, with a
// JSON access log.
type iisSite struct {
	*gh
	addr      string // the http listener, host:port
	accessLog string
	roots     *x509.CertPool // with "# https" in extra: the CA of the https binding
}

// startIISSite starts gatehouse with the apps (virtual path → testdata
// name) and extra top-level YAML (trustedProxies, compression, limits).
// With "# https" in extra the site also has an https binding with HTTP/3.
func startIISSite(t *testing.T, extra string, apps ...string) *iisSite {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	var dirs []string
	for i := 0; i+1 < len(apps); i += 2 {
		path, name := apps[i], apps[i+1]
		strip := strings.HasSuffix(name, "+strip")
		d := iisApp(t, strings.TrimSuffix(name, "+strip"))
		dirs = append(dirs, d)
		fmt.Fprintf(&b, "      - {path: %s, dir: %s, stripPathBase: %v}\n", path, d, strip)
	}
	s := &iisSite{accessLog: filepath.Join(dir, "access.log")}
	protocols, bindings := "{h2c: true}", "      - {scheme: http, address: 127.0.0.1, port: 0}\n"
	if strings.Contains(extra, "# https") {
		p := newPKI(t, dir)
		protocols = "{h2c: true, http3: true}"
		bindings += fmt.Sprintf("      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}\n", p.certFile, p.keyFile)
		s.roots = p.roots
	}
	cfg := fmt.Sprintf(`%s
protocols: %s
sites:
  - name: iis
    bindings:
%s    applications:
%s    accessLog: {path: %s, format: json}
`, extra, protocols, bindings, b.String(), s.accessLog)
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, cfg)
	t.Cleanup(func() {
		for _, d := range dirs {
			waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(d)) == 0 })
		}
	})
	s.gh = startEnv(t, "", iisEnv(), "serve", "--config", cfgFile)
	s.addr = s.listenerAddr(t, "http")
	return s
}

// do sends one request with the header fields hdr (name, value, …) and
// returns the response with its body read.
func (s *iisSite) do(method, target string, body io.Reader, hdr ...string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+target, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// logged waits for the access log line of method and path (unescaped, as
// logged) and returns status.substatus ("404.7"; "200" without one).
func (s *iisSite) logged(method, path, query string) string {
	s.t.Helper()
	var got string
	waitFor(s.t, 10*time.Second, "access log line of "+method+" "+path, func() bool {
		f, err := os.Open(s.accessLog)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e struct {
				Method    string `json:"method"`
				Path      string `json:"uri_stem"`
				Query     string `json:"uri_query"`
				Status    int    `json:"status"`
				Substatus int    `json:"substatus"`
			}
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Method == method && e.Path == path && e.Query == query {
				got = fmt.Sprint(e.Status)
				if e.Substatus != 0 {
					got += fmt.Sprintf(".%d", e.Substatus)
				}
			}
		}
		return got != ""
	})
	return got
}

// Request filtering from an IIS-published web.config: each refusal with
// IIS's status and sub-status in the access log, and the app's own request
// limits in place of the site's, both lower and higher.
func TestIISRequestFiltering(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "limits: {maxAllowedContentLength: 1000}", "/", "shop", "/plain", "plain")
	tests := []struct {
		name, method, target string
		hdr                  []string
		logPath, logQuery    string
		want                 string
	}{
		{"passes", "GET", "/headers", nil, "/headers", "", "200"},
		{"hidden segment", "GET", "/app_data/orders.json", nil, "/app_data/orders.json", "", "404.8"},
		{"file extension", "GET", "/web.config", nil, "/web.config", "", "404.7"},
		{"verb", "TRACE", "/", nil, "/", "", "404.6"},
		{"url sequence", "GET", "/a~b", nil, "/a~b", "", "404.5"},
		{"double escaping", "GET", "/a%2541", nil, "/a%41", "", "404.11"},
		{"plus is double escaping", "GET", "/a+b", nil, "/a+b", "", "404.11"},
		{"query sequence", "GET", "/q?x=%3Cscript%3E", nil, "/q", "x=%3Cscript%3E", "404.18"},
		{"header limit", "GET", "/h", []string{"X-Note", strings.Repeat("n", 17)}, "/h", "", "404.10"},
		{"app's maxQueryString below the site's", "GET", "/long?" + strings.Repeat("q", 65), nil, "/long", strings.Repeat("q", 65), "404.15"},
		{"other app keeps the site's maxQueryString", "GET", "/plain/long?" + strings.Repeat("q", 65), nil, "/plain/long", strings.Repeat("q", 65), "200"},
	}
	for _, tt := range tests {
		resp, body := s.do(tt.method, tt.target, nil, tt.hdr...)
		wantStatus := tt.want[:3]
		if fmt.Sprint(resp.StatusCode) != wantStatus {
			t.Errorf("%s: %s %s = %d, want %s", tt.name, tt.method, tt.target, resp.StatusCode, wantStatus)
			continue
		}
		if got := s.logged(tt.method, tt.logPath, tt.logQuery); got != tt.want {
			t.Errorf("%s: access log has %s, want %s", tt.name, got, tt.want)
		}
		if wantStatus == "404" && !strings.Contains(body, "404") {
			t.Errorf("%s: body %q is not the 404 page", tt.name, body)
		}
	}

	// maxAllowedContentLength: the shop allows 5000 bytes, the site 1000.
	post := func(target string, n int, chunked bool) (int, int) {
		var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), n))
		if chunked {
			body = io.MultiReader(body) // unknown length: sent chunked
		}
		resp, echoed := s.do("POST", target, body, "Content-Type", "text/plain")
		return resp.StatusCode, len(echoed)
	}
	if code, n := post("/echo", 1500, false); code != 200 || n != 1500 {
		t.Errorf("1500 bytes to the shop = %d with %d echoed, want 200 (its web.config allows 5000)", code, n)
	}
	if code, _ := post("/echo", 5001, false); code != 413 {
		t.Errorf("5001 bytes to the shop = %d, want 413", code)
	}
	if code, _ := post("/plain/echo", 1500, false); code != 413 {
		t.Errorf("1500 bytes to the plain app = %d, want 413 (the site allows 1000)", code)
	}
	if code, n := post("/echo", 1500, true); code != 200 || n != 1500 {
		t.Errorf("1500 chunked bytes to the shop = %d with %d echoed, want all 1500 (the app's limit cuts chunked bodies)", code, n)
	}
	if code, n := post("/plain/echo", 1500, true); code == 200 && n >= 1500 {
		t.Errorf("1500 chunked bytes to the plain app were all echoed; the site's limit (1000) must cut them")
	}
}

// Custom headers and dynamic compression on the way out, over HTTP/1.1 and
// HTTP/2; redirect headers on redirects only; a stream stays a stream.
func TestIISHeadersAndCompression(t *testing.T) {
	t.Parallel()
	// shutdownTimeout: the never-ending stream below is cut at stop (the lean
	// HTTP/1.1 path does not notice a client that left an idle stream).
	s := startIISSite(t, "compression: {minSize: 100, encodings: [gzip, br]}\nshutdownTimeout: 2s", "/", "shop")
	resp, _ := s.do("GET", "/headers", nil)
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "strict-origin-when-cross-origin"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if resp.Header.Get("Cache-Control") != "" {
		t.Error("a redirect header on a 200")
	}
	resp, _ = s.do("GET", "/redirect", nil)
	if resp.StatusCode != 302 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Errorf("redirect: %d %v, want 302 with the custom and redirect headers", resp.StatusCode, resp.Header)
	}
	resp, _ = s.do("GET", "/web.config", nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a refusal lacks the custom headers (IIS adds them to error responses too): %v", resp.Header)
	}
	resp, _ = s.do("GET", "/?"+strings.Repeat("q", 65), nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a 404.15 lacks the custom headers: %d %v", resp.StatusCode, resp.Header)
	}

	const size = 50000
	want := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2000)[:size]
	big := fmt.Sprintf("/big?n=%d&type=text/plain", size)
	for _, tc := range []struct{ accept, enc string }{{"gzip", "gzip"}, {"gzip;q=0.5, br", "br"}, {"zstd", ""}, {"", ""}} {
		resp, body := s.do("GET", big, nil, "Accept-Encoding", tc.accept)
		if got := resp.Header.Get("Content-Encoding"); got != tc.enc {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, tc.enc)
			continue
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary = %q", tc.accept, resp.Header.Get("Vary"))
		}
		if got := decodeBody(t, tc.enc, body); got != want {
			t.Errorf("Accept-Encoding %q: decoded %d bytes, want the %d sent", tc.accept, len(got), size)
		}
		if tc.enc != "" && len(body) > size/10 {
			t.Errorf("%s: %d bytes on the wire for %d", tc.enc, len(body), size)
		}
	}
	if resp, _ := s.do("GET", fmt.Sprintf("/big?n=%d", size), nil, "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("application/octet-stream was compressed")
	}
	if resp, _ := s.do("HEAD", big, nil, "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("a HEAD response says it is compressed")
	}
	if resp, _ := s.do("GET", big, nil, "Accept-Encoding", "gzip", "Range", "bytes=0-99"); resp.Header.Get("Content-Encoding") != "" && resp.StatusCode == 206 {
		t.Error("a 206 was compressed")
	}

	// HTTP/2 (h2c): the same compressed body.
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	h2 := &http.Client{Timeout: 30 * time.Second, Transport: h2c}
	req, _ := http.NewRequest("GET", "http://"+s.addr+big, nil)
	req.Header.Set("Accept-Encoding", "br")
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "br" || decodeBody(t, "br", string(b)) != want {
		t.Errorf("HTTP/2: %s, Content-Encoding %q, %d bytes", resp.Proto, resp.Header.Get("Content-Encoding"), len(b))
	}

	// A stream that never ends: its first line must arrive compressed while
	// the app still holds the response open.
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/stream?n=2&delay=1h", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("stream Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("stream: no gzip header before the app's first flush: %v", err)
	}
	line, err := bufio.NewReader(zr).ReadString('\n')
	if err != nil || line != "line 1\n" {
		t.Fatalf("stream: first line %q, %v; want it while the stream is open", line, err)
	}
}

// Compression over HTTP/3: the whole body, and a stream that stays one.
func TestIISCompressionHTTP3(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "# https\ncompression: {minSize: 100}\nshutdownTimeout: 2s", "/", "shop")
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"}}
	defer h3.Close()
	c := &http.Client{Timeout: 30 * time.Second, Transport: h3}
	base := "https://" + s.listenerAddr(t, "https")
	req, _ := http.NewRequest("GET", base+"/big?n=50000&type=text/plain", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2000)[:50000]
	if resp.ProtoMajor != 3 || resp.Header.Get("Content-Encoding") != "gzip" || decodeBody(t, "gzip", string(b)) != want {
		t.Errorf("HTTP/3: %s, Content-Encoding %q, %d bytes", resp.Proto, resp.Header.Get("Content-Encoding"), len(b))
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/stream?n=2&delay=1h", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("HTTP/3 stream: %v", err)
	}
	if line, err := bufio.NewReader(zr).ReadString('\n'); err != nil || line != "line 1\n" {
		t.Fatalf("HTTP/3 stream: first line %q, %v; want it while the stream is open", line, err)
	}
}

func decodeBody(t *testing.T, enc, body string) string {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return string(b)
}

// IP restrictions against the real client: behind a trusted proxy its
// X-Forwarded-For names the client; from anyone else it is not believed.
// Also shows what the app receives in X-Forwarded-For.
func TestIISIPSecurity(t *testing.T) {
	t.Parallel()
	behind := startIISSite(t, "trustedProxies: [127.0.0.1]", "/admin", "admin")
	for _, tc := range []struct{ xff, want string }{
		{"10.1.2.3", "200"},
		{"198.51.100.7, 10.1.2.3", "200"}, // the proxy appended the client; the left entry is the client's own claim
		{"10.9.0.1", "403.6"},             // first matching rule denies
		{"203.0.113.5", "403.6"},          // unlisted
		{"10.1.2.3, 203.0.113.5", "403.6"},
		{"", "403.6"}, // the proxy itself (127.0.0.1) is not listed
		{"2001:db8::9", "200"},
	} {
		var hdr []string
		if tc.xff != "" {
			hdr = []string{"X-Forwarded-For", tc.xff}
		}
		path := "/admin/headers?case=" + strings.NewReplacer(" ", "", ",", "_").Replace(tc.xff)
		resp, body := behind.do("GET", path, nil, hdr...)
		if fmt.Sprint(resp.StatusCode) != tc.want[:3] {
			t.Errorf("X-Forwarded-For %q: %d, want %s", tc.xff, resp.StatusCode, tc.want)
			continue
		}
		q := path[strings.IndexByte(path, '?')+1:]
		if got := behind.logged("GET", "/admin/headers", q); got != tc.want {
			t.Errorf("X-Forwarded-For %q: access log %s, want %s", tc.xff, got, tc.want)
		}
		if tc.xff == "10.1.2.3" {
			var rep struct {
				XFF []string `json:"raw_x_forwarded_for"`
			}
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatal(err)
			}
			// The app gets the client's list with the peer appended.
			if len(rep.XFF) != 1 || !strings.HasPrefix(rep.XFF[0], "10.1.2.3, 127.0.0.1:") {
				t.Errorf("the app received X-Forwarded-For %q, want \"10.1.2.3, 127.0.0.1:port\"", rep.XFF)
			}
		}
	}

	direct := startIISSite(t, "", "/admin", "admin")
	if resp, _ := direct.do("GET", "/admin/headers", nil, "X-Forwarded-For", "10.1.2.3"); resp.StatusCode != 403 {
		t.Errorf("without trusted proxies a forged X-Forwarded-For got %d, want 403", resp.StatusCode)
	}
}

// stripPathBase: an app that is not ASP.NET gets the path below its
// virtual path and X-Forwarded-Prefix; others keep the full path (ANCM).
func TestIISStripPathBase(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/legacy", "plain+strip", "/full", "plain")
	var rep struct {
		URI     string      `json:"raw_request_uri"`
		Headers http.Header `json:"raw_headers"`
	}
	_, body := s.do("GET", "/Legacy/headers?a=1", nil, "X-Forwarded-Prefix", "/forged")
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if rep.URI != "/headers?a=1" || rep.Headers.Get("X-Forwarded-Prefix") != "/legacy" {
		t.Errorf("stripped app got %q with X-Forwarded-Prefix %q, want /headers?a=1 and /legacy", rep.URI, rep.Headers.Get("X-Forwarded-Prefix"))
	}
	_, body = s.do("GET", "/full/headers", nil)
	rep.URI, rep.Headers = "", nil
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if rep.URI != "/full/headers" || rep.Headers.Get("X-Forwarded-Prefix") != "" {
		t.Errorf("default app got %q (X-Forwarded-Prefix %q), want the full path", rep.URI, rep.Headers.Get("X-Forwarded-Prefix"))
	}
}

// gatehouse check lists the sections it carries out and names the rest.
func TestIISCheckListsSections(t *testing.T) {
	t.Parallel()
	for name, want := range map[string][]string{
		"shop": {"section: requestFiltering (maxAllowedContentLength 5000, maxQueryString 64", "section: httpProtocol (custom headers: X-Content-Type-Options, X-Frame-Options, Referrer-Policy; 1 redirect headers)",
			"section: urlCompression (dynamic compression on", "web.config:12: <modules>: has no effect", "web.config:53: <staticContent>: has no effect"},
		"admin": {"section: ipSecurity (3 rules, others denied, denyAction Forbidden)", `web.config:16: <ipSecurity><add domainName="partner.example.com">: not supported`},
	} {
		cmd := exec.Command(gatehouseBin, "check", iisApp(t, name))
		cmd.Env = append(os.Environ(), iisEnv()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("check %s: %v\n%s", name, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("check %s: output lacks %q:\n%s", name, w, out)
			}
		}
	}
}
