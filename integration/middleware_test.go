package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what the wrapped handler observed, sent back as JSON.
type seen struct {
	Path, RawPath, PathBase, RemoteAddr, Scheme, CertCN string
	TLS                                                 bool
	Header                                              http.Header
}

func recordHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{
			Path: r.URL.Path, RawPath: r.URL.RawPath, PathBase: PathBase(r),
			RemoteAddr: r.RemoteAddr, Scheme: Scheme(r), TLS: r.TLS != nil, Header: r.Header,
		}
		if c := ClientCertificate(r); c != nil {
			s.CertCN = c.Subject.CommonName
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
}

// syncBuffer is a bytes.Buffer safe for a logger used by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func startServer(t *testing.T, m *Middleware) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns the status, the body and, when the
// wrapped handler answered, what it saw.
func do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (int, string, *seen) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		return resp.StatusCode, string(body), nil
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return resp.StatusCode, string(body), &s
}

func TestTokenCheck(t *testing.T) {
	t.Parallel()
	const token = "7b115656-1a35-407f-9db2-7e0e4d32c068"
	log, logs := newTestLogger()
	srv := startServer(t, &Middleware{Next: recordHandler(), Config: Config{Token: token}, Logger: log})

	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"missing", nil, http.StatusBadRequest},
		{"wrong", map[string]string{HeaderToken: "nope"}, http.StatusBadRequest},
		{"wrong case", map[string]string{HeaderToken: strings.ToUpper(token)}, http.StatusBadRequest},
		{"prefix", map[string]string{HeaderToken: token[:10]}, http.StatusBadRequest},
		{"right", map[string]string{HeaderToken: token}, http.StatusOK},
		{"right, lower-case header name", map[string]string{"ms-aspnetcore-token": token}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, s := do(t, srv, http.MethodGet, "/x", tt.hdr)
			if status != tt.status {
				t.Fatalf("status = %d, want %d", status, tt.status)
			}
			if status == http.StatusBadRequest {
				if body != "" || s != nil {
					t.Errorf("rejected request reached handler or has body %q", body)
				}
				return
			}
			if s == nil || s.Path != "/x" {
				t.Fatalf("handler saw %+v", s)
			}
			if v := s.Header.Get(HeaderToken); v != "" {
				t.Errorf("token header reached the handler: %q", v)
			}
		})
	}
	out := logs.String()
	if n := strings.Count(out, "does not match the expected pairing token"); n != 4 {
		t.Errorf("logged %d rejections, want 4:\n%s", n, out)
	}
	if strings.Contains(out, token) || strings.Contains(out, token[:10]) {
		t.Errorf("log echoes the token:\n%s", out)
	}
	if !strings.Contains(out, "token_present=false") || !strings.Contains(out, "token_present=true") {
		t.Errorf("log lacks token_present:\n%s", out)
	}
}

func TestNoTokenConfiguredPassesEverything(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Middleware{Next: recordHandler()})
	if status, _, s := do(t, srv, http.MethodGet, "/", nil); status != http.StatusOK || s == nil {
		t.Fatalf("status = %d, seen %+v", status, s)
	}
}

func TestShutdownEvent(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"/", "/pathBase"} {
		for _, event := range []string{"shutdown", "Shutdown"} {
			t.Run(base+"/"+event, func(t *testing.T) {
				t.Parallel()
				var calls atomic.Int32
				m := &Middleware{
					Next:       recordHandler(),
					Config:     Config{Token: "tok", PathBase: base},
					OnShutdown: func() { calls.Add(1) },
				}
				srv := startServer(t, m)
				path := strings.TrimSuffix(base, "/") + "/iisintegration"
				hdr := map[string]string{HeaderToken: "tok", HeaderEvent: event}
				for range 2 {
					status, body, s := do(t, srv, http.MethodPost, path, hdr)
					if status != http.StatusAccepted || body != "" || s != nil {
						t.Fatalf("got %d %q (handler saw %v), want 202 with no body", status, body, s != nil)
					}
				}
				select {
				case <-m.ShutdownRequested():
				default:
					t.Fatal("ShutdownRequested not closed")
				}
				if n := calls.Load(); n != 1 {
					t.Errorf("OnShutdown called %d times, want 1", n)
				}
			})
		}
	}
}

func TestShutdownEventPassesThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, event, token string
	}{
		{"wrong method", http.MethodGet, "/iisintegration", "shutdown", "tok"},
		{"wrong path", http.MethodPost, "/iisintegration2", "shutdown", "tok"},
		{"nested path", http.MethodPost, "/x/iisintegration", "shutdown", "tok"},
		{"wrong event", http.MethodPost, "/iisintegration", "restart", "tok"},
		{"no event", http.MethodPost, "/iisintegration", "", "tok"},
		{"no token configured", http.MethodPost, "/iisintegration", "shutdown", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &Middleware{Next: recordHandler(), Config: Config{Token: tt.token},
				OnShutdown: func() { t.Error("OnShutdown called") }}
			srv := startServer(t, m)
			hdr := map[string]string{HeaderToken: tt.token}
			if tt.event != "" {
				hdr[HeaderEvent] = tt.event
			}
			status, _, s := do(t, srv, tt.method, tt.path, hdr)
			if status != http.StatusOK || s == nil || s.Path != tt.path {
				t.Fatalf("status %d, handler saw %+v; want pass-through", status, s)
			}
			select {
			case <-m.ShutdownRequested():
				t.Fatal("ShutdownRequested closed")
			default:
			}
		})
	}
}

func TestForwardedHeadersFromLoopbackPeer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Middleware{Next: recordHandler()})
	peer := srv.Listener.Addr().(*net.TCPAddr).IP.String()

	tests := []struct {
		name, xff, wantRemote string
	}{
		{"v4", "203.0.113.7:4711", "203.0.113.7:4711"},
		{"v6 bracketed", "[2001:db8::1]:5017", "[2001:db8::1]:5017"},
		{"chain", "198.51.100.9:1, 203.0.113.7:4711", "203.0.113.7:4711"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, s := do(t, srv, http.MethodGet, "/", map[string]string{
				HeaderForwardedFor: tt.xff, HeaderForwardedProto: "https",
			})
			if status != http.StatusOK || s == nil {
				t.Fatalf("status %d", status)
			}
			if s.RemoteAddr != tt.wantRemote || s.Scheme != "https" || s.TLS {
				t.Errorf("RemoteAddr %q scheme %q TLS %v; want %q https false", s.RemoteAddr, s.Scheme, s.TLS, tt.wantRemote)
			}
			if h, _, _ := net.SplitHostPort(s.Header.Get(HeaderOriginalFor)); h != peer {
				t.Errorf("X-Original-For = %q, want peer %s", s.Header.Get(HeaderOriginalFor), peer)
			}
			if g := s.Header.Get(HeaderOriginalProto); g != "http" {
				t.Errorf("X-Original-Proto = %q", g)
			}
			if g := s.Header.Get(HeaderForwardedProto); g != "" {
				t.Errorf("X-Forwarded-Proto left = %q", g)
			}
		})
	}
}

func TestForwardedHeadersFromIPv6LoopbackPeer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(&Middleware{Next: recordHandler()})
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, _, s := do(t, srv, http.MethodGet, "/", map[string]string{HeaderForwardedFor: "[2001:db8::2]:80"})
	if s == nil || s.RemoteAddr != "[2001:db8::2]:80" {
		t.Fatalf("handler saw %+v", s)
	}
	if h, _, _ := net.SplitHostPort(s.Header.Get(HeaderOriginalFor)); h != "::1" {
		t.Errorf("X-Original-For = %q", s.Header.Get(HeaderOriginalFor))
	}
}

func TestForwardedHeadersIgnoredFromRemotePeer(t *testing.T) {
	t.Parallel()
	var got *http.Request
	m := &Middleware{Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r })}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set(HeaderForwardedFor, "203.0.113.7:4711")
	req.Header.Set(HeaderForwardedProto, "https")
	m.ServeHTTP(httptest.NewRecorder(), req)
	if got.RemoteAddr != "192.0.2.1:1234" || Scheme(got) != "http" {
		t.Errorf("RemoteAddr %q scheme %q; want unchanged", got.RemoteAddr, Scheme(got))
	}
	if got.Header.Get(HeaderForwardedFor) != "203.0.113.7:4711" || got.Header.Get(HeaderOriginalFor) != "" {
		t.Errorf("headers changed: %v", got.Header)
	}

	// IgnoreForwardedHeaders turns it off even for a loopback peer.
	m.IgnoreForwardedHeaders = true
	req.RemoteAddr = "127.0.0.1:1234"
	m.ServeHTTP(httptest.NewRecorder(), req)
	if got.RemoteAddr != "127.0.0.1:1234" {
		t.Errorf("IgnoreForwardedHeaders: RemoteAddr %q", got.RemoteAddr)
	}
	if req.Header.Get(HeaderForwardedFor) == "" {
		t.Error("the caller's request was modified")
	}
}

func TestPathBaseStripping(t *testing.T) {
	t.Parallel()
	srv := startServer(t, &Middleware{Next: recordHandler(), Config: Config{Token: "t", PathBase: "/PathBase"}})
	tests := []struct {
		name, path, wantPath, wantRaw, wantBase string
	}{
		{"stripped", "/PathBase/Path", "/Path", "", "/PathBase"},
		{"case-insensitive", "/pathbase/Path", "/Path", "", "/PathBase"},
		{"base only", "/PathBase", "/", "", "/PathBase"},
		{"escaped rest", "/PathBase/a%2Fb", "/a/b", "/a%2Fb", "/PathBase"},
		{"other path", "/other/x", "/other/x", "", ""},
		{"not a segment", "/PathBaseX/y", "/PathBaseX/y", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, s := do(t, srv, http.MethodGet, tt.path, map[string]string{HeaderToken: "t"})
			if status != http.StatusOK || s == nil {
				t.Fatalf("status %d", status)
			}
			if s.Path != tt.wantPath || s.RawPath != tt.wantRaw || s.PathBase != tt.wantBase {
				t.Errorf("path %q raw %q base %q; want %q %q %q", s.Path, s.RawPath, s.PathBase, tt.wantPath, tt.wantRaw, tt.wantBase)
			}
		})
	}
}

func selfSignedDER(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	certB64 := base64.StdEncoding.EncodeToString(selfSignedDER(t, "client.example"))
	log, logs := newTestLogger()
	withToken := startServer(t, &Middleware{Next: recordHandler(), Config: Config{Token: "t"}, Logger: log})
	noToken := startServer(t, &Middleware{Next: recordHandler()})

	tests := []struct {
		name   string
		srv    *httptest.Server
		value  string
		wantCN string
	}{
		{"decoded", withToken, certB64, "client.example"},
		{"garbage", withToken, "not base64!", ""},
		{"not a certificate", withToken, base64.StdEncoding.EncodeToString([]byte("hello")), ""},
		{"no token configured", noToken, certB64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, s := do(t, tt.srv, http.MethodGet, "/", map[string]string{HeaderToken: "t", HeaderClientCert: tt.value})
			if s == nil {
				t.Fatal("handler not reached")
			}
			if s.CertCN != tt.wantCN {
				t.Errorf("certificate CN %q, want %q", s.CertCN, tt.wantCN)
			}
			if v := s.Header.Get(HeaderClientCert); v != "" {
				t.Errorf("header not stripped: %q", v)
			}
		})
	}
	if n := strings.Count(logs.String(), "decode forwarded client certificate"); n != 2 {
		t.Errorf("logged %d certificate warnings, want 2:\n%s", n, logs.String())
	}
}

func TestRequestAccessorsWithoutMiddleware(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if PathBase(r) != "" || ClientCertificate(r) != nil || Scheme(r) != "http" {
		t.Error("accessors on a plain request should be empty")
	}
	r = httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
	if Scheme(r) != "https" {
		t.Errorf("Scheme of a TLS request = %q", Scheme(r))
	}
}

// As in ASP.NET Core, the shutdown path is matched after the path base is
// stripped, so with a base the bare path is recognised too.
func TestShutdownEventOutsidePathBase(t *testing.T) {
	t.Parallel()
	m := &Middleware{Next: recordHandler(), Config: Config{Token: "tok", PathBase: "/app"}}
	srv := startServer(t, m)
	status, _, _ := do(t, srv, http.MethodPost, "/IISIntegration", map[string]string{HeaderToken: "tok", HeaderEvent: "SHUTDOWN"})
	if status != http.StatusAccepted {
		t.Fatalf("status %d, want 202", status)
	}
	<-m.ShutdownRequested()
}
