// Package hostile_test runs the hostile-input corpus (testdata/*.corpus)
// against the real front door: raw bytes over TCP to a real listener, a
// real forwarder, and apps that record every byte they receive.
package hostile_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"go.uber.org/goleak"
)

// TestMain doubles as the app of TestProtocolCorpus: with
// HOSTILE_PROTOCOL_APP=1 the test binary serves instead of testing.
func TestMain(m *testing.M) {
	if os.Getenv(protocolAppEnv) == "1" {
		os.Exit(runProtocolApp())
	}
	goleak.VerifyTestMain(m)
}

// endOfCase is sent after every case's bytes: the app answering it shows
// that client, Gatehouse and app agree where each request ended.
const endOfCase = "GET /__end HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

const siteYAML = `
shutdownTimeout: 5s
limits: $LIMITS
timeouts: $TIMEOUTS
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}, {path: /api, dir: api}]
`

// frontDoor is a running front door with one recorder app per application.
type frontDoor struct {
	addr    string // cleartext listener
	tlsAddr string // TLS listener
	roots   *x509.CertPool
	apps    map[string]*recorder // by virtual path
	logs    *syncBuffer
	// inflight counts requests inside the forwarders; forwarded counts
	// every request that entered one.
	inflight, forwarded atomic.Int64
}

// settle waits until no request is inside a forwarder and every app
// connection has read what was sent to it (idle after its answer, or
// closed).
func (fd *frontDoor) settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	// Quiet three times in a row: bytes the app has not read yet sit in its
	// socket (quiet counts them), but the app's reader may be about to
	// take them.
	for still := 0; still < 3; {
		if fd.inflight.Load() == 0 && fd.apps["/"].quiet() && fd.apps["/api"].quiet() {
			still++
		} else {
			still = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("front door still busy: %d in flight", fd.inflight.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// defaultLimits are the corpus's request limits: small, so the limit
// cases are short.
const defaultLimits = "{maxAllowedContentLength: 1024, maxRequestBytes: 2048}"

func startFrontDoor(t testing.TB, timeouts string) *frontDoor {
	t.Helper()
	return startFrontDoorLimits(t, timeouts, defaultLimits)
}

// startFrontDoorLimits is startFrontDoor with the site's limits (YAML).
func startFrontDoorLimits(t testing.TB, timeouts, limits string) *frontDoor {
	t.Helper()
	dir := t.TempDir()
	fd := &frontDoor{apps: map[string]*recorder{"/": newRecorder(t, "root"), "/api": newRecorder(t, "api")}, logs: &syncBuffer{}}
	for _, d := range []string{"root", "api"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile, roots := writeCert(t, dir)
	fd.roots = roots
	file := filepath.Join(dir, "gatehouse.yaml")
	yaml := strings.NewReplacer("$CERT", certFile, "$KEY", keyFile, "$TIMEOUTS", timeouts, "$LIMITS", limits).Replace(siteYAML)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := siteconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(fd.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	open := func(_ context.Context, spec frontend.AppSpec) (frontend.App, error) {
		rec := fd.apps[spec.Path]
		return &proxied{Handler: proxy.Handler{Backend: fixed(rec.addr()), Log: log}, fd: fd}, nil
	}
	s, err := frontend.New(cfg, open, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Addrs()["http"] == nil || s.Addrs()["https"] == nil {
		if time.Now().After(deadline) {
			t.Fatal("front door did not listen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fd.addr = s.Addrs()["http"].String()
	fd.tlsAddr = s.Addrs()["https"].String()
	return fd
}

// wayIn is one way to the front door's HTTP/1.1 loop.
type wayIn struct {
	name string
	dial func() (net.Conn, error)
}

// waysIn returns the cleartext and the TLS (ALPN http/1.1) way in.
func (fd *frontDoor) waysIn() []wayIn {
	return []wayIn{
		{"cleartext", func() (net.Conn, error) { return net.DialTimeout("tcp", fd.addr, 5*time.Second) }},
		{"tls", func() (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
				Config: &tls.Config{RootCAs: fd.roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}}}
			return d.Dial("tcp", fd.tlsAddr)
		}},
	}
}

// proxied is a forwarder as a front-door application. It counts the
// requests in flight, on the one way every request reaches an app
// (Forward), so a case can wait until the front door is done.
type proxied struct {
	proxy.Handler
	fd *frontDoor
}

// Current returns p: its settings never change.
func (p *proxied) Current() pipeline.App { return p }

// Chain returns nil: p has no stages.
func (p *proxied) Chain() *pipeline.Chain { return nil }

// Forward forwards r, counting it while it is in flight.
func (p *proxied) Forward(ctx context.Context, w http.ResponseWriter, r *pipeline.Request, body io.Reader) {
	defer p.enter()()
	p.Handler.Forward(ctx, w, r, body)
}

// enter counts a request into the forwarder; the function it returns
// counts it out.
func (p *proxied) enter() func() {
	p.fd.forwarded.Add(1)
	p.fd.inflight.Add(1)
	return func() { p.fd.inflight.Add(-1) }
}

func (p *proxied) Close(context.Context) error {
	p.CloseIdleConnections()
	return nil
}

type backend struct{ addr string }

func fixed(addr string) backend { return backend{addr} }

func (b backend) Acquire(context.Context) (*upstream.Lease, error) {
	return upstream.NewLease(b.addr, "corpus-token", 1, nil, nil), nil
}

// response is one response read from the front door.
type response struct {
	Status   int
	Recorder string // X-Recorder: which app answered; "" = the front door
	Seen     seen   // what the app said it got
	Raw      string // status line, for messages
}

// exchange sends raw (then endOfCase) on a new connection and reads
// responses until the front door closes the connection. closed is false
// if it was still open when the read deadline passed.
func exchange(dial func() (net.Conn, error), raw string, within time.Duration) (resps []response, closed bool, err error) {
	c, err := dial()
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(within))
	// The front door may close before reading everything: a failed write
	// is not an error here, what came back is what counts.
	go func() { _, _ = io.WriteString(c, raw+endOfCase) }()
	br := bufio.NewReader(c)
	for {
		res, err := http.ReadResponse(br, nil)
		if err == nil && res.StatusCode < 200 {
			continue // 100 Continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
				return resps, true, nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return resps, false, nil
			}
			return resps, false, fmt.Errorf("read response %d: %w", len(resps)+1, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		r := response{Status: res.StatusCode, Recorder: res.Header.Get("X-Recorder"), Raw: res.Status}
		if r.Recorder != "" {
			if err := json.Unmarshal(body, &r.Seen); err != nil {
				return resps, false, fmt.Errorf("app response %d: %v", len(resps)+1, err)
			}
		}
		resps = append(resps, r)
		if err != nil {
			return resps, true, nil
		}
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// TestHTTP1Corpus runs every case of testdata/http1.corpus over a
// cleartext and a TLS listener. Both serve HTTP/1.x with the lean loop
// (internal/h1's strict parser) alone: HTTP/1.0, upgrades, absolute-form
// and asterisk-form targets and large heads too; only the HTTP/2 preface
// would go to net/http (where h2c is on; it is not here).
func TestHTTP1Corpus(t *testing.T) {
	t.Parallel()
	cases, err := loadCorpus("testdata/http1.corpus")
	if err != nil {
		t.Fatal(err)
	}
	fd := startFrontDoor(t, "{header: 3s, body: 3s, idle: 3s}")
	for _, p := range fd.waysIn() {
		var refused, passed, failed int
		t.Run(p.name, func(t *testing.T) {
			for _, c := range cases {
				// Sequential: the apps' recordings are per case.
				ok := t.Run(c.Name, func(t *testing.T) {
					fd.settle(t)
					for _, a := range fd.apps {
						a.reset()
					}
					fd.logs.Reset()
					resps, closed, err := exchange(p.dial, c.Raw, 15*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					fd.settle(t)
					checkCase(t, fd, c, c.Want, resps, closed)
				})
				switch {
				case !ok:
					failed++
				case c.Want == "pass":
					passed++
				default:
					refused++
				}
			}
		})
		t.Logf("corpus over the %s path: %d cases tried, %d refused or closed, %d normalised, %d failed",
			p.name, len(cases), refused, passed, failed)
	}
}

// checkCase checks one case's outcome against its expectation.
//
// want "fuzz" checks only what holds for any input: one app answer per
// request the app read in full, strictly framed bytes at the app (cut
// short only where the exchange did not end with the app's answer to
// /__end), nothing spoofed, the pairing token exactly once.
func checkCase(t *testing.T, fd *frontDoor, c *corpusCase, want string, resps []response, closed bool) {
	t.Helper()
	var (
		raws      []string
		completed []seen
		aborted   []seen
	)
	// Let the apps finish reading what the front door sent them: they read
	// it before the answers the client got, except for aborted bodies.
	for _, path := range []string{"/", "/api"} {
		r, comp, ab := fd.apps[path].snapshot()
		raws = append(raws, r...)
		completed = append(completed, comp...)
		aborted = append(aborted, ab...)
	}
	report := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s:%d: case %s (want %s)\nsent %q\nresponses:", c.File, c.Line, c.Name, want, c.Raw)
		for _, r := range resps {
			fmt.Fprintf(&b, " [%s from %q %s]", r.Raw, r.Recorder, r.Seen.Target)
		}
		fmt.Fprintf(&b, "\nconnection closed: %v\napp received %q\nfront door log:\n%s", closed, raws, fd.logs.String())
		return b.String()
	}
	fromApp := 0
	for _, r := range resps {
		if r.Recorder != "" {
			fromApp++
		}
	}
	// Whatever the outcome: one app answer per request the app read in
	// full, and every app connection strictly framed, with nothing spoofed.
	if fromApp != len(completed) {
		t.Errorf("%d answers from the app, but it read %d requests in full\n%s", fromApp, len(completed), report())
	}
	for _, raw := range raws {
		reqs, err := strictSplit(raw)
		// A body the front door found bad midway is cut off: the app's
		// connection ends with a partial request, which is fine.
		ended := len(resps) > 0 && resps[len(resps)-1].Seen.Target == "/__end"
		cut := err != nil && (want == "refuse" || want == "drop" || want == "fuzz" && !ended) && rest(err)
		if err != nil && !cut {
			t.Errorf("app got bytes a lenient parser could read differently: %v\n%s", err, report())
		}
		for _, rq := range reqs {
			for _, h := range rq.Header {
				if spoofed(h[0], h[1]) {
					t.Errorf("app got header %s: %s\n%s", h[0], h[1], report())
				}
			}
			if tok := headerValues(rq.Header, "Ms-Aspnetcore-Token"); len(tok) != 1 || tok[0] != "corpus-token" {
				t.Errorf("app got pairing token %q, want exactly the lease's\n%s", tok, report())
			}
		}
	}
	if want == "drop" {
		// Closed, with at most a refusal: nothing went to the app in full.
		if !closed || len(resps) > 1 || len(resps) == 1 && (resps[0].Recorder != "" || resps[0].Status < 400) {
			t.Errorf("want the connection closed with at most a refusal\n%s", report())
		}
		if len(completed) > 0 {
			t.Errorf("the app read %d requests in full\n%s", len(completed), report())
		}
		return
	}
	if want == "fuzz" {
		return
	}
	if len(resps) == 0 {
		t.Fatalf("no response\n%s", report())
	}
	last := resps[len(resps)-1]
	for _, r := range resps[:len(resps)-1] {
		if r.Recorder == "" {
			t.Errorf("front door answered %s before the case ended\n%s", r.Raw, report())
		}
	}
	switch want {
	case "refuse":
		if last.Recorder != "" || last.Status < 400 || last.Status >= 500 && last.Status != 501 && last.Status != 505 {
			t.Errorf("not refused: last answer %s from %q\n%s", last.Raw, last.Recorder, report())
		}
		if c.Status != 0 && last.Status != c.Status {
			t.Errorf("refused with %d, want %d\n%s", last.Status, c.Status, report())
		}
		if !closed {
			t.Errorf("connection left open after the refusal\n%s", report())
		}
		for _, s := range completed {
			if s.Target == "/__end" {
				t.Errorf("the end-of-case request reached the app after a refusal\n%s", report())
			}
		}
	case "close":
		if last.Recorder == "" || !closed {
			t.Errorf("want the app's answer and the connection closed: last answer %s from %q, closed %v\n%s",
				last.Raw, last.Recorder, closed, report())
		}
		for _, s := range completed {
			if s.Target == "/__end" {
				t.Errorf("the end-of-case request reached the app after the connection should have ended\n%s", report())
			}
		}
	case "pass":
		if last.Recorder == "" || last.Seen.Target != "/__end" {
			t.Errorf("out of step: the last answer is %s from %q for %q, want the app's answer to /__end\n%s",
				last.Raw, last.Recorder, last.Seen.Target, report())
		}
		if len(aborted) > 0 {
			t.Errorf("the app could not read %d request bodies: %v\n%s", len(aborted), aborted[0].Err, report())
		}
		if len(resps) > 0 && resps[0].Recorder != "" {
			first := resps[0]
			if c.App != "" && first.Recorder != map[string]string{"/": "root", "/api": "api"}[c.App] {
				t.Errorf("first request went to app %q, want %s\n%s", first.Recorder, c.App, report())
			}
			if c.Target != "" && first.Seen.Target != c.Target {
				t.Errorf("app got target %q, want %q\n%s", first.Seen.Target, c.Target, report())
			}
		}
	}
}

// rest reports whether strictSplit's err is about bytes that end too soon.
func rest(err error) bool {
	return strings.Contains(err.Error(), "not ended") || strings.Contains(err.Error(), "shorter")
}

// headerValues returns the values of the field name (any case).
func headerValues(h [][2]string, name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			vs = append(vs, f[1])
		}
	}
	return vs
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSettleCountsEveryWayIn checks that the forwarder counts the requests
// of both ways into the front door (the lean loop's Forward, net/http's
// ServeHTTP for what the lean loop hands off), which settle relies on:
// every answer from an app was counted.
func TestSettleCountsEveryWayIn(t *testing.T) {
	t.Parallel()
	fd := startFrontDoor(t, "{header: 3s, body: 3s, idle: 3s}")
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", fd.addr, 5*time.Second) }
	answers := int64(0)
	for _, raw := range []string{"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET /b HTTP/1.0\r\n\r\n"} {
		resps, _, err := exchange(dial, raw, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fd.settle(t)
		for _, r := range resps {
			if r.Recorder != "" {
				answers++
			}
		}
		if got := fd.forwarded.Load(); got != answers {
			t.Errorf("after %q: %d requests counted into the forwarders, %d answers from the apps", raw, got, answers)
		}
	}
}
