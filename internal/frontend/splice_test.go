package frontend_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// The tests of the splice path (large response bodies moved from the app's
// connection to the client's without user-space copies) are not parallel:
// they read a process-wide counter (frontend.SplicedBytes), and parallel
// tests only start once the sequential ones are done.

// chainProxyApp is a proxyApp with stages.
type chainProxyApp struct {
	proxyApp
	chain *pipeline.Chain
}

func (a chainProxyApp) Current() pipeline.App  { return a }
func (a chainProxyApp) Chain() *pipeline.Chain { return a.chain }

// spliceServer runs a front door with one cleartext HTTP/1.1 binding that
// forwards to the app at addr with chain's stages, logging to log (nil:
// nowhere). It returns the binding's address.
func spliceServer(t *testing.T, addr string, chain *pipeline.Chain, log io.Writer) string {
	t.Helper()
	return spliceServerTimeout(t, addr, chain, log, time.Minute)
}

// spliceServerTimeout is spliceServer with the app's requestTimeout.
func spliceServerTimeout(t *testing.T, addr string, chain *pipeline.Chain, log io.Writer, requestTimeout time.Duration) string {
	t.Helper()
	e := newEnv(t, "app")
	cfg := e.config(t, `
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`)
	if log == nil {
		log = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(log, nil))
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		h := &proxy.Handler{Backend: fixedBackend(addr), RequestTimeout: requestTimeout, Log: logger}
		return chainProxyApp{proxyApp{h}, chain}, nil
	}
	srv, err := frontend.New(cfg, open, logger)
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	return addrOf(t, s, "http", h1)
}

// randomBody returns n bytes that do not compress, the same every run.
func randomBody(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(b)
	return b
}

// bodyApp answers every GET with body, its length declared.
func bodyApp(t *testing.T, body []byte, contentType string) *httptest.Server {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	t.Cleanup(back.Close)
	return back
}

// TestSpliceLargeBody sends two 1 MiB answers on one keep-alive client
// connection: each arrives intact, most of it by splice, the access log's
// observers count every byte, and the connection carries the second
// request after the first body.
func TestSpliceLargeBody(t *testing.T) {
	const size = 1 << 20
	body := randomBody(size)
	want := sha256.Sum256(body)
	back := bodyApp(t, body, "application/octet-stream")
	var done goneLog
	addr := spliceServer(t, back.Listener.Addr().String(), &pipeline.Chain{Observers: []pipeline.Observer{&done}}, nil)
	tr := &http.Transport{DisableCompression: true, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	before := frontend.SplicedBytes()
	for i := range 2 {
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/big", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, got := do(t, c, req)
		if res.StatusCode != http.StatusOK || len(got) != size || sha256.Sum256([]byte(got)) != want {
			t.Fatalf("request %d: status %d, %d bytes; want 200 and the app's %d bytes", i, res.StatusCode, len(got), size)
		}
		if i == 1 && !reused {
			t.Error("the second request did not reuse the client connection")
		}
	}
	// Each body but the bytes read with its head (the app connection's
	// 4 KiB reader) goes by splice.
	if n := frontend.SplicedBytes() - before; n < 2*(size-4<<10) {
		t.Errorf("%d bytes spliced, want at least %d", n, 2*(size-4<<10))
	}
	waitFor(t, "both request-done events", func() bool { return len(done.all()) == 2 })
	for _, d := range done.all() {
		if d.BytesOut != size {
			t.Errorf("Done.BytesOut = %d, want %d", d.BytesOut, size)
		}
	}
}

// TestSpliceSlowClient: requestTimeout bounds the app's silence, not the
// client's pace. The app sends its body in small pieces, so a splice step
// waits for the app more than once; the client stops reading three times,
// each time for longer than the timeout, so such a step is caught between
// two of its waits for the app with the deadline passed. The client gets
// the whole body.
func TestSpliceSlowClient(t *testing.T) {
	const size, piece = 4 << 20, 16 << 10
	const timeout = 500 * time.Millisecond
	body := randomBody(size)
	want := sha256.Sum256(body)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for b := body; len(b) > 0; b = b[piece:] {
			if _, err := w.Write(b[:piece]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond) // the app's pace: a piece at a time
		}
	}))
	t.Cleanup(back.Close)
	var logs syncLog
	addr := spliceServerTimeout(t, back.Listener.Addr().String(), nil, &logs, timeout)
	c, err := dialSmall(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not an upper bound on the time taken: it only keeps a hang from
	// hanging the test.
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	res := getBig(t, c)
	before := frontend.SplicedBytes()
	h := sha256.New()
	var got int64
	for _, at := range []int64{4 << 10, 1 << 20, 2 << 20} {
		n, err := io.CopyN(h, res.Body, at-got)
		got += n
		if err != nil {
			t.Fatalf("after %d body bytes: %v", got, err)
		}
		// The client's pause is what is tested: longer than
		// requestTimeout and its slack.
		time.Sleep(3 * timeout)
	}
	n, err := io.Copy(h, res.Body)
	got += n
	if err != nil || got != size || [32]byte(h.Sum(nil)) != want {
		t.Fatalf("body: %d bytes, %v; want the app's %d bytes (log: %s)", got, err, size, logs.String())
	}
	if n := frontend.SplicedBytes() - before; n <= 0 {
		t.Errorf("%d bytes spliced, want some", n)
	}
}

// TestSpliceShortBody has the app declare 1 MiB and close after 300 KiB:
// as on the copying path, the client gets the header, the bytes the app
// sent and then a closed connection (not one left waiting), and the cut is
// logged.
func TestSpliceShortBody(t *testing.T) {
	const declared, sent = 1 << 20, 300 << 10
	body := randomBody(sent)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			skipHead(bufio.NewReader(c))
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(declared)+"\r\n\r\n")
			_, _ = c.Write(body)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-appDone })
	var logs syncLog
	addr := spliceServer(t, ln.Addr().String(), nil, &logs)
	before := frontend.SplicedBytes()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not an upper bound on the time taken: it only keeps a hang from
	// hanging the test.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /short HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.ContentLength != declared {
		t.Fatalf("status %d, Content-Length %d; want 200, %d", res.StatusCode, res.ContentLength, declared)
	}
	got, err := io.ReadAll(res.Body)
	if err != io.ErrUnexpectedEOF {
		t.Errorf("reading the body: %v, want io.ErrUnexpectedEOF (the connection closed)", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("got %d body bytes, want the %d the app sent", len(got), len(body))
	}
	if n := frontend.SplicedBytes() - before; n <= 0 {
		t.Errorf("%d bytes spliced, want some", n)
	}
	waitFor(t, "the cut body logged", func() bool { return strings.Contains(logs.String(), "app response body cut off") })
}

// upperStage is an outbound stage whose body wrapper upper-cases the body,
// keeping its length (and Content-Length).
type upperStage struct{}

func (upperStage) Respond(*pipeline.Request, int, pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	return func(next pipeline.BodyWriter) pipeline.BodyWriter { return upperBody{next} }
}

type upperBody struct{ pipeline.BodyWriter }

func (b upperBody) Write(p []byte) (int, error) { return b.BodyWriter.Write(bytes.ToUpper(p)) }

// TestSpliceNotUnderBodyStages sends a large answer through outbound stages
// that must see the body (one that keeps the length, compression): it goes
// the copying way, filtered.
func TestSpliceNotUnderBodyStages(t *testing.T) {
	const size = 1 << 20
	body := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz\n"), size/27+1)[:size]
	back := bodyApp(t, body, "text/plain")
	for _, tc := range []struct {
		name  string
		stage pipeline.OutStage
		gzip  bool
		want  []byte
	}{
		{"upper", upperStage{}, false, bytes.ToUpper(body)},
		{"gzip", iis.NewCompression(siteconfig.Compression{}.WithDefaults()), true, body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := spliceServer(t, back.Listener.Addr().String(), &pipeline.Chain{Out: []pipeline.OutStage{tc.stage}}, nil)
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			before := frontend.SplicedBytes()
			res, got := get(t, &http.Client{Transport: tr}, "http://"+addr+"/big")
			if res.StatusCode != http.StatusOK || res.Uncompressed != tc.gzip || got != string(tc.want) {
				t.Errorf("status %d, gzip %v, %d bytes; want 200, gzip %v and the filtered %d bytes",
					res.StatusCode, res.Uncompressed, len(got), tc.gzip, len(tc.want))
			}
			if n := frontend.SplicedBytes() - before; n != 0 {
				t.Errorf("%d bytes spliced past the stage", n)
			}
		})
	}
}

// TestSpliceClientGone has the client leave in the middle of a large
// spliced body: the app's connection is cut (its writes fail), and the
// failure is the client's, not logged as an app's cut-off body.
func TestSpliceClientGone(t *testing.T) {
	const declared = 1 << 30
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			appErr <- err
			return
		}
		defer c.Close()
		skipHead(bufio.NewReader(c))
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(declared)+"\r\n\r\n")
		chunk := randomBody(64 << 10)
		for sent := 0; sent < declared; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				appErr <- err
				return
			}
		}
		appErr <- nil
	}()
	t.Cleanup(func() { ln.Close() })
	var logs syncLog
	addr := spliceServer(t, ln.Addr().String(), nil, &logs)
	before := frontend.SplicedBytes()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, res.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bytes spliced", func() bool { return frontend.SplicedBytes()-before > 0 })
	c.Close()
	if err := <-appErr; err == nil {
		t.Fatal("the app sent its whole body to a client that left")
	}
	if strings.Contains(logs.String(), "app response body cut off") {
		t.Errorf("the client's leaving was logged as the app's failure:\n%s", logs.String())
	}
}

// skipHead reads a request head from br, up to its empty line (or an
// error), as the fake apps here answer without looking at it.
func skipHead(br *bufio.Reader) {
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}
