package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "7b115656-1a35-407f-9db2-7e0e4d32c068"

// fakeBackend hands out leases from acquire and counts Acquire and Release.
type fakeBackend struct {
	acquire  func(n int) (*upstream.Lease, error) // n counts calls from 1
	calls    atomic.Int32
	released atomic.Int32
}

func (b *fakeBackend) Acquire(ctx context.Context) (*upstream.Lease, error) {
	return b.acquire(int(b.calls.Add(1)))
}

// lease returns a lease on addr whose Release is counted.
func (b *fakeBackend) lease(addr string, pid int, exited <-chan struct{}) *upstream.Lease {
	return upstream.NewLease(addr, testToken, pid, exited, func() { b.released.Add(1) })
}

// fixed returns a backend that always leases addr (pid 100, never exiting).
func fixed(addr string) *fakeBackend {
	b := &fakeBackend{}
	b.acquire = func(int) (*upstream.Lease, error) { return b.lease(addr, 100, nil), nil }
	return b
}

// waitReleased waits until every successful Acquire was released.
func (b *fakeBackend) waitReleased(t *testing.T, acquired int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.released.Load() != acquired {
		if time.Now().After(deadline) {
			t.Fatalf("released %d leases, want %d", b.released.Load(), acquired)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded by deadline
	}
}

type env struct {
	front, back *httptest.Server
	h           *Handler
	b           *fakeBackend
	remote      chan string // RemoteAddr of each request as the front end saw it
}

// newEnv starts an app backend running app and a front end running a Handler
// that leases it. configure may adjust the Handler before it starts.
func newEnv(t *testing.T, app http.HandlerFunc, configure func(*Handler)) *env {
	t.Helper()
	e := &env{remote: make(chan string, 16)}
	e.back = httptest.NewServer(app)
	t.Cleanup(e.back.Close)
	e.b = fixed(e.back.Listener.Addr().String())
	e.h = &Handler{Backend: e.b}
	if configure != nil {
		configure(e.h)
	}
	t.Cleanup(e.h.CloseIdleConnections)
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.remote <- r.RemoteAddr:
		default:
		}
		forwardHandler{h: e.h}.ServeHTTP(w, r)
	}))
	t.Cleanup(e.front.Close)
	return e
}

func get(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(body)
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	seen := make(chan *http.Request, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		io.WriteString(w, "ok")
	}, nil)

	req, _ := http.NewRequest("GET", e.front.URL+"/a%2Fb/c?x=%20y&z;w=1&bad=%zz", nil)
	req.Host = "example.com:8443"
	req.Header["MS-ASPNETCORE-TOKEN"] = []string{"forged"}
	req.Header["mS-ASPNETCORE-f"] = []string{"x"}
	req.Header["Ms-Aspnetcore-Foo-Bar"] = []string{"x"}
	req.Header["MS-ASPNETCORE"] = []string{"x"}
	req.Header["MS-ASPNETCORE-CLIENTCERT"] = []string{"forged"}
	req.Header["X-Forwarded-For"] = []string{"203.0.113.7:1111"}
	req.Header["X-Forwarded-Proto"] = []string{"https"}
	req.Header["X-Forwarded-Host"] = []string{"public.example"}
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9v")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Authorization", "Bearer abc")
	req.Header.Add("Cookie", "a=1")
	// Underscore spellings that CGI-style servers merge with the real ones.
	req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
	req.Header["x_forwarded_proto"] = []string{"https"}
	req.Header["MS_ASPNETCORE_TOKEN"] = []string{"forged"}
	req.Header["Ms_Aspnetcore-User"] = []string{"admin"}
	req.Header["Transfer_Encoding"] = []string{"chunked"}
	req.Header["X_Custom_Thing"] = []string{"kept"}

	res, body := get(t, e.front.Client(), req)
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	r := <-seen
	remote := <-e.remote
	checks := []struct{ name, got, want string }{
		{"token", r.Header.Get("Ms-Aspnetcore-Token"), testToken},
		{"host", r.Host, "example.com:8443"},
		{"request uri", r.RequestURI, "/a%2Fb/c?x=%20y&z;w=1&bad=%zz"},
		{"x-forwarded-for", r.Header.Get("X-Forwarded-For"), "203.0.113.7:1111, " + remote},
		{"x-forwarded-proto", r.Header.Get("X-Forwarded-Proto"), "https, http"},
		{"x-forwarded-host", r.Header.Get("X-Forwarded-Host"), "public.example"},
		{"te", r.Header.Get("Te"), "trailers"},
		{"authorization", r.Header.Get("Authorization"), "Bearer abc"},
		{"cookie", r.Header.Get("Cookie"), "a=1"},
		{"x-hop (named in Connection)", r.Header.Get("X-Hop"), ""},
		{"keep-alive", r.Header.Get("Keep-Alive"), ""},
		{"proxy-authorization", r.Header.Get("Proxy-Authorization"), ""},
		{"client cert (plain http)", r.Header.Get("Ms-Aspnetcore-Clientcert"), ""},
		{"user-agent", r.Header.Get("User-Agent"), "Go-http-client/1.1"},
		{"other underscore names", r.Header.Get("X_Custom_Thing"), "kept"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for k, v := range r.Header {
		if hasModulePrefix(k) && k != "Ms-Aspnetcore-Token" || underscoreSpoof(k) {
			t.Errorf("client header %s: %q reached the app", k, v)
		}
	}
	if v := r.Header["Ms-Aspnetcore-Token"]; len(v) != 1 {
		t.Errorf("token header values = %q, want exactly one", v)
	}
	e.b.waitReleased(t, 1)
}

func TestRewriteForwardedHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		remote    string
		tls       bool
		xff, xfp  []string
		wantXFF   string
		wantProto string
	}{
		{name: "plain", remote: "192.0.2.1:5017", wantXFF: "192.0.2.1:5017", wantProto: "http"},
		{name: "ipv6", remote: "[::1]:5017", wantXFF: "[::1]:5017", wantProto: "http"},
		{name: "tls", remote: "[2001:db8::1]:443", tls: true, wantXFF: "[2001:db8::1]:443", wantProto: "https"},
		{name: "existing", remote: "10.0.0.1:1", xff: []string{"1.1.1.1"}, xfp: []string{"https"},
			wantXFF: "1.1.1.1, 10.0.0.1:1", wantProto: "https, http"},
		{name: "several headers", remote: "10.0.0.1:1", xff: []string{"1.1.1.1", "2.2.2.2, 3.3.3.3"}, xfp: []string{"https", "http"},
			wantXFF: "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1:1", wantProto: "https, http, http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hdr := http.Header{}
			if tt.xff != nil {
				hdr["X-Forwarded-For"] = tt.xff
			}
			if tt.xfp != nil {
				hdr["X-Forwarded-Proto"] = tt.xfp
			}
			in := &inbound{method: "GET", host: "example.com", header: pipeline.HTTPHeader(hdr), remoteAddr: tt.remote}
			if tt.tls {
				in.tls = &tls.ConnectionState{}
			}
			var hw headWriter
			appendRequestFields(new(requestFields), &hw, in, testToken)
			h := parseFields(t, hw.b)
			if got := h.Get("X-Forwarded-For"); got != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tt.wantXFF)
			}
			if got := h.Get("X-Forwarded-Proto"); got != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tt.wantProto)
			}
		})
	}
}

// parseFields reads "Name: value\r\n" lines.
func parseFields(t *testing.T, b []byte) http.Header {
	t.Helper()
	h := http.Header{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("bad field line %q", line)
		}
		h.Add(k, v)
	}
	return h
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	app := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["MS-ASPNETCORE-TOKEN"] = []string{testToken}
		h["Ms-Aspnetcore-Winauthtoken"] = []string{"1f"}
		h["ms-aspnetcore-x"] = []string{"y"}
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Set("Server", "Kestrel")
		h.Set("Connection", "close")
		io.WriteString(w, "body")
	}
	for _, forward := range []bool{false, true} {
		t.Run("forward="+map[bool]string{false: "false", true: "true"}[forward], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, app, func(h *Handler) { h.ForwardResponseConnectionHeader = forward })
			req, _ := http.NewRequest("GET", e.front.URL+"/", nil)
			res, body := get(t, e.front.Client(), req)
			if body != "body" {
				t.Errorf("body = %q", body)
			}
			for k := range res.Header {
				if hasModulePrefix(k) {
					t.Errorf("response header %s reached the client", k)
				}
			}
			if got := res.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1; Path=/", "b=2; Path=/"}) {
				t.Errorf("Set-Cookie = %q, want both in order", got)
			}
			if got := res.Header.Get("Server"); got != "Kestrel" {
				t.Errorf("Server = %q, want Kestrel", got)
			}
			// The client's Transport turns "Connection: close" into res.Close.
			if res.Close != forward {
				t.Errorf("response Connection: close reached the client: %v, want %v", res.Close, forward)
			}
			e.b.waitReleased(t, 1)
		})
	}
}

func TestStreamingResponse(t *testing.T) {
	t.Parallel()
	proceed := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second")
	}, nil)
	t.Cleanup(func() {
		select {
		case <-proceed:
		default:
			close(proceed)
		}
	})
	res, err := e.front.Client().Get(e.front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	first := make([]byte, len("first;"))
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(res.Body, first); got <- err }()
	select {
	case err := <-got:
		if err != nil || string(first) != "first;" {
			t.Fatalf("first chunk = %q, %v", first, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk did not arrive while the app was still writing")
	}
	close(proceed)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
	e.b.waitReleased(t, 1)
}

func TestRequestBodyStreaming(t *testing.T) {
	t.Parallel()
	gotFirst := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(gotFirst)
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, string(buf)+"|"+string(rest)+"|"+r.Header.Get("Content-Length"))
	}, nil)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var res *http.Response
	var body []byte
	var err error
	go func() {
		defer close(done)
		res, err = e.front.Client().Post(e.front.URL+"/upload", "text/plain", pr)
		if err == nil {
			body, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
	}()
	io.WriteString(pw, "hello")
	select {
	case <-gotFirst:
	case <-time.After(5 * time.Second):
		t.Fatal("app did not see the first part of the body before the client finished sending")
	}
	io.WriteString(pw, " world")
	pw.Close()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || string(body) != "hello| world|" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	e.b.waitReleased(t, 1)
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Header.Get("Expect")+"|"+string(b))
	}, nil)
	tr := e.front.Client().Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 5 * time.Second // wait for the 100 rather than send at once
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", e.front.URL+"/x", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	res, body := get(t, &http.Client{Transport: tr}, req)
	if res.StatusCode != 200 || body != "100-continue|payload" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	e.b.waitReleased(t, 1)
}

func TestTrailers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "data")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}, nil)
	res, err := e.front.Client().Get(e.front.URL + "/t")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(body) != "data" {
		t.Fatalf("body = %q, %v", body, err)
	}
	if len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Errorf("TransferEncoding = %q, want chunked", res.TransferEncoding)
	}
	if got := res.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q", got)
	}
	if got := res.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("trailer X-Late = %q", got)
	}
	e.b.waitReleased(t, 1)
}

func TestLargeBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(w, io.TeeReader(r.Body, h)) // echo while hashing
		if err != nil || n != 8<<20 {
			t.Errorf("app read %d bytes, %v", n, err)
		}
	}, nil)
	src := make([]byte, 8<<20)
	rand.Read(src)
	res, err := e.front.Client().Post(e.front.URL+"/echo", "application/octet-stream", bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := sha256.New()
	n, err := io.Copy(got, res.Body)
	if err != nil || n != int64(len(src)) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	want := sha256.Sum256(src)
	if !bytes.Equal(got.Sum(nil), want[:]) {
		t.Fatal("echoed body differs")
	}
	e.b.waitReleased(t, 1)
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var logs syncBuffer
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/midbody" {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(h *Handler) {
		h.RequestTimeout = 200 * time.Millisecond
		h.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	t.Cleanup(func() { close(release) }) // runs before the servers close

	req, _ := http.NewRequest("GET", e.front.URL+"/slow", nil)
	res, body := get(t, e.front.Client(), req)
	if res.StatusCode != 502 || !strings.Contains(body, "HTTP Error 502.3 - Bad Gateway") ||
		!strings.Contains(body, "requestTimeout (00:00:00.200)") {
		t.Errorf("got %d %q", res.StatusCode, body)
	}
	if l := logs.String(); !strings.Contains(l, "status=502.3") || !strings.Contains(l, "pid=100") || !strings.Contains(l, "path=/slow") {
		t.Errorf("log lacks status, pid or path: %s", l)
	}

	// Inactivity in the middle of the body: headers went out, so the client
	// connection is cut (as ANCM resets it).
	res, err := e.front.Client().Get(e.front.URL + "/midbody")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "partial" || err == nil {
		t.Errorf("mid-body timeout: got %d %q, err %v; want 200, partial body and an error", res.StatusCode, b, err)
	}
	e.b.waitReleased(t, 2)
	if strings.Contains(logs.String(), testToken) {
		t.Error("token leaked into the log")
	}
}

// deadAddr returns a loopback address nothing listens on: a port held by
// a bound socket that does not listen, so a connection to it is refused
// for the whole test. (A port freed by closing a listener could be given
// to a listener of a test running in parallel meanwhile.)
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

func TestBackendRefused(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := &fakeBackend{}
	dead := deadAddr(t)
	b.acquire = func(int) (*upstream.Lease, error) { return b.lease(dead, 7, nil), nil }
	h := &Handler{Backend: b, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewServer(forwardHandler{h: h})
	t.Cleanup(front.Close)
	req, _ := http.NewRequest("GET", front.URL+"/x", nil)
	res, body := get(t, front.Client(), req)
	if res.StatusCode != 502 || !strings.Contains(body, "502.3") || !strings.Contains(body, "The connection to the app failed.") {
		t.Errorf("got %d %q", res.StatusCode, body)
	}
	if strings.Contains(body, dead) || strings.Contains(body, "refused") {
		t.Errorf("page shows the cause: %q", body)
	}
	if l := logs.String(); !strings.Contains(l, "connection refused") || !strings.Contains(l, "status=502.3") {
		t.Errorf("log lacks the cause: %s", l)
	}
	b.waitReleased(t, 1)
}

func TestRetry(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from new process "+r.Header.Get("Ms-Aspnetcore-Token"))
	}))
	t.Cleanup(back.Close)
	closed := make(chan struct{})
	close(closed)
	dead := deadAddr(t)

	tests := []struct {
		name       string
		method     string
		body       string
		header     string
		noRetry    bool            // RetryIdempotent off
		h2         bool            // the client speaks HTTP/2 to the front
		chunked    bool            // the body has no Content-Length
		exited     <-chan struct{} // the first process's Exited
		secondErr  error           // the re-Acquire fails
		wantStatus int
		wantCalls  int32
	}{
		{name: "GET retried", method: "GET", exited: closed, wantStatus: 200, wantCalls: 2},
		{name: "HEAD retried", method: "HEAD", exited: closed, wantStatus: 200, wantCalls: 2},
		{name: "POST with Idempotency-Key retried", method: "POST", header: "Idempotency-Key", exited: closed, wantStatus: 200, wantCalls: 2},
		{name: "PUT with X-Idempotency-Key retried", method: "PUT", header: "X-Idempotency-Key", exited: closed, wantStatus: 200, wantCalls: 2},
		{name: "POST not retried", method: "POST", exited: closed, wantStatus: 502, wantCalls: 1},
		{name: "GET with body not retried", method: "GET", body: "x", exited: closed, wantStatus: 502, wantCalls: 1},
		{name: "GET with chunked body not retried", method: "GET", body: "x", chunked: true, exited: closed, wantStatus: 502, wantCalls: 1},
		{name: "GET over HTTP/2 retried", method: "GET", h2: true, exited: closed, wantStatus: 200, wantCalls: 2},
		{name: "POST over HTTP/2 not retried", method: "POST", body: "x", h2: true, exited: closed, wantStatus: 502, wantCalls: 1},
		{name: "live process not retried", method: "GET", exited: make(chan struct{}), wantStatus: 502, wantCalls: 1},
		{name: "retry off", method: "GET", noRetry: true, exited: closed, wantStatus: 502, wantCalls: 1},
		{name: "re-acquire fails", method: "GET", exited: closed, secondErr: upstream.ErrShuttingDown, wantStatus: 503, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			b.acquire = func(n int) (*upstream.Lease, error) {
				if n == 1 {
					return b.lease(dead, 1, tt.exited), nil
				}
				if tt.secondErr != nil {
					return nil, tt.secondErr
				}
				return upstream.NewLease(back.Listener.Addr().String(), "second", 2, nil, func() { b.released.Add(1) }), nil
			}
			h := &Handler{Backend: b, RetryIdempotent: !tt.noRetry}
			t.Cleanup(h.CloseIdleConnections)
			front := httptest.NewUnstartedServer(forwardHandler{h: h})
			if tt.h2 {
				front.EnableHTTP2 = true
				front.StartTLS()
			} else {
				front.Start()
			}
			t.Cleanup(front.Close)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body)
				}
			}
			req, _ := http.NewRequest(tt.method, front.URL+"/r", body)
			if tt.header != "" {
				req.Header.Set(tt.header, "k1")
			}
			res, got := get(t, front.Client(), req)
			if tt.h2 && res.ProtoMajor != 2 {
				t.Fatalf("front spoke %s, want HTTP/2", res.Proto)
			}
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d (%q)", res.StatusCode, tt.wantStatus, got)
			}
			if tt.wantStatus == 200 && tt.method != "HEAD" && got != "from new process second" {
				t.Errorf("body = %q", got)
			}
			if n := b.calls.Load(); n != tt.wantCalls {
				t.Errorf("Acquire called %d times, want %d", n, tt.wantCalls)
			}
			want := tt.wantCalls
			if tt.secondErr != nil {
				want = 1
			}
			b.waitReleased(t, want)
		})
	}
}

func TestClientGone(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	arrived := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // the proxy cancels the app request when the client goes
	}, func(h *Handler) {
		h.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if err := cancelOnArrival(e, "/gone", arrived); !errors.Is(err, context.Canceled) {
		t.Errorf("client err = %v", err)
	}
	e.b.waitReleased(t, 1)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "status=499") {
		if time.Now().After(deadline) {
			t.Fatalf("no 499 log line: %s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header }))
	t.Cleanup(back.Close)
	b := fixed(back.Listener.Addr().String())
	h := &Handler{Backend: b}
	t.Cleanup(h.CloseIdleConnections)
	front := httptest.NewUnstartedServer(forwardHandler{h: h})
	front.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	front.StartTLS()
	t.Cleanup(front.Close)

	cert := clientCert(t)
	client := front.Client()
	client.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{cert}
	req, _ := http.NewRequest("GET", front.URL+"/", nil)
	res, _ := get(t, client, req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := <-seen
	if want := base64.StdEncoding.EncodeToString(cert.Certificate[0]); got.Get("Ms-Aspnetcore-Clientcert") != want {
		t.Errorf("MS-ASPNETCORE-CLIENTCERT = %q, want %q", got.Get("Ms-Aspnetcore-Clientcert"), want)
	}
	if got.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https", got.Get("X-Forwarded-Proto"))
	}
	b.waitReleased(t, 1)
}

func clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFrontendModes runs the basic exchange with the Handler behind an
// HTTP/1.1, HTTPS/1.1 and HTTP/2 front end; the app side is always HTTP/1.1.
func TestFrontendModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"h1", "https1", "h2"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.Header().Set("Ms-Aspnetcore-Token", testToken)
				io.WriteString(w, r.Proto+"|"+r.Method+"|"+r.Header.Get("X-Forwarded-Proto")+"|"+
					r.Header.Get("Ms-Aspnetcore-Token")+"|"+string(body))
			}))
			t.Cleanup(back.Close)
			b := fixed(back.Listener.Addr().String())
			h := &Handler{Backend: b}
			t.Cleanup(h.CloseIdleConnections)
			front := httptest.NewUnstartedServer(forwardHandler{h: h})
			proto := "http"
			switch mode {
			case "h1":
				front.Start()
			case "https1":
				front.StartTLS()
				proto = "https"
			case "h2":
				front.EnableHTTP2 = true
				front.StartTLS()
				proto = "https"
			}
			t.Cleanup(front.Close)
			res, err := front.Client().Post(front.URL+"/p", "text/plain", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			wantProto := "HTTP/1.1"
			if mode == "h2" {
				wantProto = "HTTP/2.0"
			}
			if res.Proto != wantProto {
				t.Errorf("client proto = %s, want %s", res.Proto, wantProto)
			}
			if want := "HTTP/1.1|POST|" + proto + "|" + testToken + "|payload"; string(body) != want {
				t.Errorf("app saw %q, want %q", body, want)
			}
			if len(res.Header.Values("Set-Cookie")) != 2 || res.Header.Get("Ms-Aspnetcore-Token") != "" {
				t.Errorf("response headers = %v", res.Header)
			}
			b.waitReleased(t, 1)
		})
	}
}

// cancelOnArrival sends GET path through e's front door, cancels it once
// arrived is closed (the app has the request) and returns the client's error.
func cancelOnArrival(e *env, path string, arrived <-chan struct{}) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.front.URL+path, nil)
	errc := make(chan error, 1)
	go func() {
		res, err := e.front.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	return <-errc
}
