package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rawApp is an app that answers every request with fixed bytes, so the
// tests can send the client any framing, good or broken.
type rawApp struct {
	ln       net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex // protects conns
	conns    map[net.Conn]bool
	closed   chan struct{} // receives after the app closed a connection
}

// newRawApp starts an app whose answer to each request is respond(request);
// after writing it the connection is closed when closeAfter is true.
func newRawApp(t *testing.T, respond func(r *http.Request) (answer string, closeAfter bool)) *rawApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &rawApp{ln: ln, conns: map[net.Conn]bool{}, closed: make(chan struct{}, 16)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.accepted.Add(1)
			a.mu.Lock()
			a.conns[c] = true
			a.mu.Unlock()
			a.wg.Add(1)
			go a.serve(c, respond)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		a.mu.Lock()
		for c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	return a
}

func (a *rawApp) serve(c net.Conn, respond func(r *http.Request) (string, bool)) {
	defer a.wg.Done()
	defer func() {
		c.Close()
		select {
		case a.closed <- struct{}{}:
		default:
		}
	}()
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		answer, closeAfter := respond(r)
		if _, err := io.WriteString(c, answer); err != nil || closeAfter {
			return
		}
	}
}

func (a *rawApp) addr() string { return a.ln.Addr().String() }

// front starts a front end whose Handler forwards to addr.
func front(t *testing.T, addr string, configure func(*Handler)) (*httptest.Server, *fakeBackend) {
	t.Helper()
	b := fixed(addr)
	h := &Handler{Backend: b}
	if configure != nil {
		configure(h)
	}
	t.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(forwardHandler{h: h})
	t.Cleanup(srv.Close)
	return srv, b
}

// TestResponseFraming sends every framing case, good and broken, through
// the client: good ones arrive whole and keep the app connection when they
// may; broken ones are 502.3 before the header, a cut connection after it.
func TestResponseFraming(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 70<<10)
	tests := []struct {
		name      string
		method    string
		answer    string
		close     bool   // the app closes after answering
		status    int    // 0: the client must see an error (cut response)
		body      string // expected body
		header    string // "Name: value" expected in the client's response
		reuse     bool   // the next request uses the same app connection
		wantInLog string
	}{
		{name: "content-length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: "hello", header: "Content-Length: 5", reuse: true},
		{name: "bare LF lines", answer: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", status: 200, body: "hi", reuse: true},
		{name: "chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", status: 200, body: "hello world", reuse: true},
		{name: "chunked wins over length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 200, body: "hello", reuse: true},
		{name: "equal duplicate lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", status: 200, body: "hi", header: "Content-Length: 2", reuse: true},
		{name: "close-delimited", answer: "HTTP/1.1 200 OK\r\n\r\nuntil close", close: true, status: 200, body: "until close"},
		{name: "HTTP/1.0", answer: "HTTP/1.0 200 OK\r\n\r\nold", close: true, status: 200, body: "old"},
		{name: "HTTP/1.0 keep-alive", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold", status: 200, body: "old", reuse: true},
		{name: "field named in Connection", answer: "HTTP/1.1 200 OK\r\nConnection: x-SECRET-hop\r\nX-Secret-Hop: 1\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", header: "X-Secret-Hop: ", reuse: true},
		{name: "connection close", answer: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "HEAD", method: "HEAD", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, header: "Content-Length: 5", reuse: true},
		{name: "204", answer: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, reuse: true},
		{name: "304", answer: "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", status: 304, header: "Etag: \"x\"", reuse: true},
		{name: "103 then 200", answer: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", reuse: true},
		{name: "status without reason", answer: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", reuse: true},
		{name: "large body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 71680\r\n\r\n" + big, status: 200, body: big, reuse: true},
		{name: "differing lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", status: 502, wantInLog: "differing Content-Length"},
		{name: "bad length", answer: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi", status: 502, wantInLog: "Content-Length"},
		{name: "gzip, chunked", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 502, wantInLog: "Transfer-Encoding"},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 0\r\n\r\n", status: 502, wantInLog: "folded"},
		{name: "space before colon", answer: "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n", status: 502, wantInLog: "header name"},
		{name: "control character", answer: "HTTP/1.1 200 OK\r\nX-A: 1\x002\r\nContent-Length: 0\r\n\r\n", status: 502, wantInLog: "value of X-A"},
		{name: "bad status line", answer: "HTTP/2.0 200 OK\r\n\r\n", status: 502, wantInLog: "status line"},
		{name: "header over 64 KiB", answer: "HTTP/1.1 200 OK\r\nX-Big: " + big + "\r\nContent-Length: 0\r\n\r\n", status: 502, wantInLog: "64 KiB"},
		{name: "unrequested 101", answer: "HTTP/1.1 101 Switching Protocols\r\n\r\n", status: 502, wantInLog: "101"},
		{name: "truncated body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", close: true},
		{name: "bad chunk size", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
		{name: "chunk without CRLF", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"},
		{name: "chunk size overflow", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := newRawApp(t, func(*http.Request) (string, bool) { return tt.answer, tt.close })
			var logs syncBuffer
			srv, b := front(t, app.addr(), func(h *Handler) { h.Log = newTestLog(&logs) })
			method := tt.method
			if method == "" {
				method = "GET"
			}
			for i := range 2 {
				req, _ := http.NewRequest(method, srv.URL+"/f", nil)
				res, err := srv.Client().Do(req)
				if tt.status == 0 {
					if err == nil {
						_, err = io.ReadAll(res.Body)
						res.Body.Close()
					}
					if err == nil {
						t.Fatalf("the client saw a complete response, want a cut one")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != tt.status {
					t.Fatalf("got %d, %v; want %d", res.StatusCode, err, tt.status)
				}
				if tt.status == 502 {
					if !strings.Contains(string(body), "502.3") || !strings.Contains(logs.String(), tt.wantInLog) {
						t.Errorf("page %q, log %s; want 502.3 and %q logged", body, logs.String(), tt.wantInLog)
					}
					return
				}
				if string(body) != tt.body {
					t.Errorf("body = %.40q (%d bytes), want %.40q", body, len(body), tt.body)
				}
				if tt.header != "" {
					k, v, _ := strings.Cut(tt.header, ": ")
					if got := res.Header.Get(k); got != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				if i == 0 {
					b.waitReleased(t, 1)
				}
			}
			want := int32(2)
			if tt.reuse {
				want = 1
			}
			if n := app.accepted.Load(); n != want {
				t.Errorf("app accepted %d connections for two requests, want %d", n, want)
			}
		})
	}
}

// TestStaleConnection: the app closes a keep-alive connection while it is
// idle in the pool. A safe request is sent again on a new connection; an
// unsafe one is not sent on the closed connection at all.
func TestStaleConnection(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			app := newRawApp(t, func(*http.Request) (string, bool) {
				return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
			})
			srv, b := front(t, app.addr(), nil)
			for i := range 3 {
				req, _ := http.NewRequest(method, srv.URL+"/s", strings.NewReader(""))
				res, body := get(t, srv.Client(), req)
				if res.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
				}
				b.waitReleased(t, int32(i+1))
				<-app.closed // the app's FIN is in the pooled connection's socket now
			}
			if n := app.accepted.Load(); n != 3 {
				t.Errorf("app accepted %d connections, want 3", n)
			}
		})
	}
}

// TestCancelThenReuse: a request whose client went away must not leave
// its disconnect callback armed on a pooled connection; the next requests
// on the Handler succeed.
func TestCancelThenReuse(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	}, nil)
	// Warm the pool, then cancel a request in flight.
	for range 2 {
		req, _ := http.NewRequest("GET", e.front.URL+"/ok", nil)
		if res, body := get(t, e.front.Client(), req); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
	}
	if err := cancelOnArrival(e, "/hang", arrived); !errors.Is(err, context.Canceled) {
		t.Fatalf("client err = %v", err)
	}
	e.b.waitReleased(t, 3)
	for i := range 5 {
		req, _ := http.NewRequest("GET", e.front.URL+"/ok", nil)
		if res, body := get(t, e.front.Client(), req); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d after the cancel: %d %q", i, res.StatusCode, body)
		}
	}
}

// TestRequestTrailers: a chunked request body's trailers reach the app.
func TestRequestTrailers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, string(b)+"|"+r.Trailer.Get("X-Sum")+"|"+strings.Join(r.TransferEncoding, ","))
	}, nil)
	req, _ := http.NewRequest("POST", e.front.URL+"/t", nil)
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = &trailerBody{r: strings.NewReader("data"), set: func() { req.Trailer.Set("X-Sum", "42") }}
	req.ContentLength = -1
	res, body := get(t, e.front.Client(), req)
	if res.StatusCode != 200 || body != "data|42|chunked" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// TestEarlyAnswer: the app answers before reading the request body while
// the client keeps sending. The exchange must end (the body writer is cut
// off) and the client gets the answer or, as net/http may reset a
// connection whose body it will not read, a reset.
func TestEarlyAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}, nil)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.front.URL+"/upload", pr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := pw.Write(make([]byte, 1024)); err != nil {
				return
			}
		}
	}()
	res, err := e.front.Client().Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", res.StatusCode)
		}
	}
	pw.CloseWithError(errors.New("stop"))
	<-done
	e.b.waitReleased(t, 1)
}

func newTestLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
