package frontend_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestRapidResetLogged opens streams and resets them at once (HTTP/2 rapid
// reset, CVE-2023-44487) on one connection: every request that reached the
// front door is logged as 499 with ClientGone, none as 200, the error log
// holds no line per reset stream, and another connection is still served.
func TestRapidResetLogged(t *testing.T) {
	t.Parallel()
	const streams = 200
	e := newEnv(t, "root")
	o := newOpener()
	var gone goneLog
	o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{&gone}}}
	var logs syncLog
	cfg := e.config(t, `
shutdownTimeout: 2s
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: root}]
    accessLog: {path: access.jsonl, format: json}
`)
	srv, err := frontend.New(cfg, o.open, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, srv)
	addr := addrOf(t, s, "https", h2)

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, c) }() // the server's frames
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	open := func(id uint32) {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/hold"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
	}
	reset := func(id uint32) {
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
	}
	// The first stream is reset only once it reached the app, so that at
	// least one reset stream is known to have been dispatched; the rest
	// are reset at once (a server may drop those before any handler runs).
	open(1)
	waitFor(t, "the first stream to reach the app", func() bool {
		a := o.get("s/")
		return a != nil && a.hits.Load() >= 1
	})
	reset(1)
	for i := 1; i < streams; i++ {
		id := uint32(2*i + 1)
		open(id)
		reset(id)
	}

	// Another client is served meanwhile.
	res, body := get(t, client(t, h2, addr, e.pki, false), "https://localhost/probe")
	if res.StatusCode != 200 || decode(t, body).Path != "/probe" {
		t.Fatalf("probe: %d %q", res.StatusCode, body)
	}
	// The reset streams the server dispatched end as 499; some it may drop
	// before any handler runs (Go's own rapid-reset guard).
	waitFor(t, "the reset streams to end", func() bool {
		a := o.get("s/")
		return a != nil && int64(len(gone.all())) == a.hits.Load()
	})
	resets := 0
	for _, d := range gone.all() {
		if d.ClientGone {
			resets++
			if d.Status != 499 {
				t.Errorf("a reset stream was reported as %d", d.Status)
			}
		}
	}
	if resets == 0 {
		t.Errorf("no reset stream reached the app; the test did not test anything")
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, "access.jsonl"))
	if n := strings.Count(string(b), `"status":200`); n != 1 {
		t.Errorf("%d access-log lines say 200, want 1 (the probe):\n%s", n, b)
	}
	if n := strings.Count(logs.String(), "/hold"); n > 0 {
		t.Errorf("the log has %d lines about reset streams:\n%s", n, logs.String())
	}
	t.Logf("%d of %d reset streams reached the app", resets, streams)
}

// syncLog is a log destination safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runServer runs srv until the test ends.
func runServer(t *testing.T, srv *frontend.Server) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	waitFor(t, "listeners bound", func() bool { return len(srv.Addrs()) > 0 })
	return &running{Server: srv, stop: func() error { return nil }}
}
