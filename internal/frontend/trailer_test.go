package frontend_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// TestRequestTrailersFollowHeaderRules sends request trailers over HTTP/2,
// h2c and HTTP/3 through the front door and the forwarder to a Go app: trailers
// named like the fields Gatehouse sets or strips (MS-ASPNETCORE-USER,
// -TOKEN, X-Forwarded-For and -Proto, their underscore
// spellings) never reach the app; an ordinary trailer does.
func TestRequestTrailersFollowHeaderRules(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seen := map[string][]string{}
		for k, vs := range r.Trailer {
			if len(vs) > 0 {
				seen[k] = vs
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"trailer": seen, "xff": r.Header.Values("X-Forwarded-For")})
	}))
	t.Cleanup(back.Close)
	e := newEnv(t, "app")
	cfg := e.config(t, `
protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: app}]
`)
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		return proxyApp{&proxy.Handler{Backend: fixedBackend(back.Listener.Addr().String()), RequestTimeout: time.Minute}}, nil
	}
	srv, err := frontend.New(cfg, open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	forged := map[string]string{
		"Ms-Aspnetcore-User":  "admin",
		"Ms-Aspnetcore-Token": "forged-token",
		"X-Forwarded-For":     "6.6.6.6",
		"X-Forwarded-Proto":   "https",
		"X_forwarded_for":     "6.6.6.6",
		"Ms_aspnetcore_user":  "admin",
	}
	for _, m := range []mode{h2c, h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			binding := "http"
			if m.tls() {
				binding = "https"
			}
			c := client(t, m, addrOf(t, s, binding, m), e.pki, false)
			req, err := http.NewRequest(http.MethodPost, m.url("localhost", "/upload"), io.NopCloser(strings.NewReader("body")))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // a streamed body: trailers follow it
			req.Trailer = http.Header{"X-Checksum": {"abc"}}
			for k, v := range forged {
				req.Trailer[k] = []string{v}
			}
			res, body := do(t, c, req)
			if res.StatusCode != 200 || res.ProtoMajor != m.proto() {
				t.Fatalf("%s: %d %s", res.Proto, res.StatusCode, body)
			}
			var got struct {
				Trailer map[string][]string
				XFF     []string
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("app answer %q: %v", body, err)
			}
			if v := got.Trailer["X-Checksum"]; len(v) != 1 || v[0] != "abc" {
				t.Errorf("the ordinary trailer did not reach the app: %v", got.Trailer)
			}
			for k := range forged {
				if v, ok := got.Trailer[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("trailer %s reached the app: %q", k, v)
				}
			}
			if len(got.XFF) != 1 || strings.Contains(got.XFF[0], "6.6.6.6") {
				t.Errorf("X-Forwarded-For = %q, want only the peer", got.XFF)
			}
		})
	}
}

// rawAnswerApp starts an HTTP/1.1 app on a loopback socket that answers
// each request with answers[path] as raw bytes (so the test can send any
// framing, trailers and fields), or, for a path it has none for, with the
// names of the request's header fields, one a line. It closes when the
// test ends.
func rawAnswerApp(t *testing.T, answers map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // protects conns
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					answer, ok := answers[r.URL.Path]
					if !ok {
						var names []string
						for k := range r.Header {
							names = append(names, k)
						}
						slices.Sort(names)
						body := strings.Join(names, "\n")
						answer = "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// chunkedAnswer is a chunked HTTP/1.1 answer with body (in one chunk, if
// any) and the trailer section trailers (field lines), with head's field
// lines first.
func chunkedAnswer(head, body, trailers string) string {
	s := "HTTP/1.1 200 OK\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n"
	if body != "" {
		s += strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n"
	}
	return s + "0\r\n" + trailers + "\r\n"
}

// TestAnswerTrailersAndHopFields sends app answers with trailers and with
// fields the app's Connection field names through the forwarder, over
// every protocol: a trailer reaches the client as a trailer (never as a
// header field, whatever the answer's size: one the writer holds whole,
// none, one that streams), under the header rules (the module's fields,
// framing and Connection-listed ones removed); a field the app's
// Connection names (RFC 9110 §7.6.1), in any case, is not forwarded, in
// the header or as a trailer.
func TestAnswerTrailersAndHopFields(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("streamed ", 2<<10)
	hop := "Connection: X-Secret-Hop, x-other-HOP\r\n"
	back := rawAnswerApp(t, map[string]string{
		"/small": chunkedAnswer("Trailer: X-End\r\n", "hello world!", "X-End: yes\r\n"),
		"/empty": chunkedAnswer("Trailer: X-End\r\n", "", "X-End: yes\r\n"),
		"/big":   chunkedAnswer("Trailer: X-End\r\n", big, "X-End: yes\r\n"),
		"/rules": chunkedAnswer(hop+"Trailer: X-End, X-Secret-Hop, Ms-Aspnetcore-Token, Content-Length\r\n", "hello world!",
			"X-End: yes\r\nX-Secret-Hop: 1\r\nx-other-hop: 2\r\nMS-ASPNETCORE-TOKEN: token\r\nContent-Length: 5\r\n"),
		"/hop": "HTTP/1.1 200 OK\r\n" + hop + "X-Secret-Hop: 1\r\nX-OTHER-HOP: 2\r\nX-Kept: 3\r\nContent-Length: 12\r\n\r\nhello world!",
	})
	e := newEnv(t, "root")
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		return proxyApp{&proxy.Handler{Backend: fixedBackend(back), RequestTimeout: time.Minute}}, nil
	}
	srv, err := frontend.New(e.config(t, allProtocolsConfig("")), open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	tests := []struct {
		path, body, trailer string
	}{
		{"/small", "hello world!", "yes"},
		{"/empty", "", "yes"},
		{"/big", big, "yes"},
		{"/rules", "hello world!", "yes"},
		{"/hop", "hello world!", ""},
	}
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			for _, tt := range tests {
				res, body := get(t, c, m.url("localhost", tt.path))
				if res.StatusCode != 200 || body != tt.body {
					t.Errorf("%s: %d with %d bytes (%.20q…), want 200 with %d", tt.path, res.StatusCode, len(body), body, len(tt.body))
				}
				if got := res.Trailer.Get("X-End"); got != tt.trailer {
					t.Errorf("%s: trailer X-End = %q, want %q (trailers %v)", tt.path, got, tt.trailer, res.Trailer)
				}
				for _, k := range []string{"X-End", "X-Secret-Hop", "X-Other-Hop", "Ms-Aspnetcore-Token"} {
					if v, ok := res.Header[k]; ok {
						t.Errorf("%s: header field %s: %q reached the client", tt.path, k, v)
					}
				}
				for _, k := range []string{"X-Secret-Hop", "X-Other-Hop", "Ms-Aspnetcore-Token", "Content-Length"} {
					if v := res.Trailer.Get(k); v != "" {
						t.Errorf("%s: trailer %s: %q reached the client", tt.path, k, v)
					}
				}
				if tt.path == "/hop" && res.Header.Get("X-Kept") != "3" {
					t.Errorf("/hop: X-Kept = %q, want the field the Connection field does not name", res.Header.Get("X-Kept"))
				}
				if m.proto() == 1 && tt.trailer != "" && (res.ContentLength != -1 || len(res.TransferEncoding) != 1) {
					t.Errorf("%s: Content-Length %d, Transfer-Encoding %q: want a chunked answer, whose trailers can follow",
						tt.path, res.ContentLength, res.TransferEncoding)
				}
			}
		})
	}
	// An HTTP/1.0 client cannot take trailers: it gets the body whole,
	// without them and without a Trailer field announcing them.
	t.Run("http1.0", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/small", "/empty", "/big", "/rules"} {
			head, body := rawAnswer(t, s.Addrs()["http"].String(), "GET "+path+" HTTP/1.0\r\nHost: localhost\r\n\r\n")
			for _, f := range []string{"Trailer:", "X-End:", "X-Secret-Hop:"} {
				if strings.Contains(strings.ToLower(head), strings.ToLower("\n"+f)) {
					t.Errorf("%s: the HTTP/1.0 answer's head has %s\n%s", path, f, head)
				}
			}
			want := map[string]string{"/small": "hello world!", "/empty": "", "/big": big, "/rules": "hello world!"}[path]
			if body != want {
				t.Errorf("%s: HTTP/1.0 body %d bytes (%.20q…), want %d", path, len(body), body, len(want))
			}
		}
	})
	// The request's way: a field the client's Connection names does not
	// reach the app; close still closes the connection after the answer.
	t.Run("request", func(t *testing.T) {
		t.Parallel()
		head, body := rawAnswer(t, s.Addrs()["http"].String(), "GET /fields HTTP/1.1\r\nHost: localhost\r\n"+
			"Connection: x-client-HOP, close\r\nX-Client-Hop: 1\r\nX-Kept: 2\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 200 ") {
			t.Fatalf("answer %q", head)
		}
		names := strings.Split(body, "\n")
		if slices.Contains(names, "X-Client-Hop") || !slices.Contains(names, "X-Kept") {
			t.Errorf("the app got the fields %q; want X-Kept and not X-Client-Hop (named in Connection)", names)
		}
	})
}

// rawAnswer sends req on a new connection to addr and reads until the
// server closes it; it returns the answer's head and its body (de-chunked
// when chunked).
func rawAnswer(t *testing.T, addr, req string) (head, body string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not a bound on the time taken: it keeps a hang from hanging the test.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	head, body, ok := strings.Cut(string(all), "\r\n\r\n")
	if !ok {
		t.Fatalf("answer without a head's end: %q", all)
	}
	if strings.Contains(strings.ToLower(head), "\ntransfer-encoding: chunked") {
		res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	return head, body
}

// TestAnswerFieldInHeaderAndTrailer: an app may send a field in its header
// and again as a trailer (Server-Timing is made for it). Over every
// protocol the client gets the header's value in the header and the
// trailer's value as the trailer, once each: the header's value is not
// repeated in the trailers, and the header keeps it.
func TestAnswerFieldInHeaderAndTrailer(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("streamed ", 2<<10)
	back := rawAnswerApp(t, map[string]string{
		"/small": chunkedAnswer("Server-Timing: app;dur=1\r\nTrailer: Server-Timing\r\n", "hello world!", "Server-Timing: db;dur=2\r\n"),
		"/big":   chunkedAnswer("Server-Timing: app;dur=1\r\nTrailer: Server-Timing\r\n", big, "Server-Timing: db;dur=2\r\n"),
	})
	e := newEnv(t, "root")
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		return proxyApp{&proxy.Handler{Backend: fixedBackend(back), RequestTimeout: time.Minute}}, nil
	}
	srv, err := frontend.New(e.config(t, allProtocolsConfig("")), open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			for _, path := range []string{"/small", "/big"} {
				res, _ := get(t, c, m.url("localhost", path))
				if got := res.Header.Values("Server-Timing"); !slices.Equal(got, []string{"app;dur=1"}) {
					t.Errorf("%s: header Server-Timing = %q, want the header's value", path, got)
				}
				if got := res.Trailer.Values("Server-Timing"); !slices.Equal(got, []string{"db;dur=2"}) {
					t.Errorf("%s: trailer Server-Timing = %q, want the trailer's value alone", path, got)
				}
			}
		})
	}
}
