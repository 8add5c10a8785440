//lint:file-ignore SA1019 x/net/http2.Transport is the only Go client that sends extended CONNECT (":protocol").

package frontend_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// TestTunnelFloodDoesNotStarve: over HTTP/2 and HTTP/3, while one tunnel
// (a WebSocket over extended CONNECT) echoes as fast as client and app can
// send, plain requests are all answered, on the flooding connection itself
// (its other streams: the write scheduler gives each stream its turn) and
// on another connection, and the flood keeps moving, also while the app
// holds a request on each connection. Counted in requests and bytes, not
// time. A tunnel is an upgraded connection, not a request body: the flood
// carries far more than maxAllowedContentLength, and a tunnel quiet for
// longer than the body timeout still echoes. Like TestTunnelIdleTimeout,
// it runs itself again with GODEBUG=http2xconnect=1.
func TestTunnelFloodDoesNotStarve(t *testing.T) {
	if !xconnectChild(t, 90*time.Second, "h2", "h3") {
		return
	}
	e := newEnv(t, "root")
	o := newOpener()
	o.arrived = make(chan struct{})
	s := start(t, e.config(t, `
timeouts: {webSocket: 60s, body: 1s}
limits: {maxAllowedContentLength: 65536}
protocols: {http3: true}
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: root}]
`), o)
	for _, m := range []mode{h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			addr := addrOf(t, s, "https", m)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			rt := tunnelTransport(t, m, addr, e)
			floodConn := &http.Client{Transport: rt, Timeout: 5 * time.Second} // its probes share the flood's connection
			other := client(t, m, addr, e.pki, false)

			floodCtx, stopFlood := context.WithCancel(ctx)
			pr, pw := io.Pipe()
			req := tunnelRequest(t, floodCtx, m, pr)
			var wg sync.WaitGroup
			msg := bytes.Repeat([]byte("x"), 16<<10)
			wg.Go(func() {
				for {
					if _, err := pw.Write(msg); err != nil {
						return
					}
				}
			})
			var echoed atomic.Int64
			progress := make(chan struct{}, 1) // a value after each read of the echo
			res, err := rt.RoundTrip(req)      // the fake app answers at once, before reading
			if err == nil && res.StatusCode != http.StatusOK {
				res.Body.Close()
				err = fmt.Errorf("status %s", res.Status)
			}
			if err != nil {
				stopFlood()
				pw.Close()
				wg.Wait()
				t.Fatalf("flood: %v", err)
			}
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := res.Body.Read(buf)
					echoed.Add(int64(n))
					select {
					case progress <- struct{}{}:
					default:
					}
					if err != nil {
						return
					}
				}
			})
			defer func() {
				stopFlood()
				pw.Close()
				res.Body.Close()
				wg.Wait()
			}()
			waitEchoed := func(min int64) {
				t.Helper()
				for echoed.Load() < min {
					select {
					case <-progress:
					case <-ctx.Done():
						t.Fatalf("the flood echoed %d bytes, want %d", echoed.Load(), min)
					}
				}
			}
			waitEchoed(1 << 20)
			for i := range 20 {
				for _, c := range []*http.Client{floodConn, other} {
					res, body := get(t, c, m.url("localhost", "/probe"))
					if res.StatusCode != http.StatusOK || decode(t, body).Path != "/probe" {
						t.Fatalf("probe %d: %d %q", i, res.StatusCode, body)
					}
				}
			}

			// The flood moves while a probe is in flight on each connection:
			// the app holds them (/block) until it has echoed another MiB.
			held := holdProbes(t, ctx, m, o, rt, other.Transport)
			waitEchoed(echoed.Load() + 1<<20)
			for i, res := range held.release(t) {
				if res.err != nil || res.status != http.StatusOK || decode(t, res.body).Path != "/probe/block" {
					t.Fatalf("held probe %d: %d %q %v", i, res.status, res.body, res.err)
				}
			}
			waitEchoed(echoed.Load() + 1<<20) // still flowing after the probes

			// A tunnel quiet for twice the body timeout still echoes.
			qr, qw := io.Pipe()
			defer qw.Close()
			qres, err := rt.RoundTrip(tunnelRequest(t, ctx, m, qr))
			if err != nil {
				t.Fatalf("quiet tunnel: %v", err)
			}
			defer qres.Body.Close()
			buf := make([]byte, 4)
			for i := range 2 {
				if i == 1 {
					time.Sleep(2 * time.Second) // the quiet being tested: twice timeouts.body
				}
				if _, err := qw.Write([]byte("ping")); err != nil {
					t.Fatalf("quiet tunnel, write %d: %v", i, err)
				}
				if _, err := io.ReadFull(qres.Body, buf); err != nil || string(buf) != "ping" {
					t.Fatalf("quiet tunnel, echo %d: %q %v", i, buf, err)
				}
			}
		})
	}
}

// heldProbes are requests that the app holds: GET /probe/block, one over
// each of rts.
type heldProbes struct {
	ctx     context.Context
	o       *opener
	answers chan heldAnswer
	n       int
	held    int // how many the app holds now
}

type heldAnswer struct {
	i      int
	status int
	body   string
	err    error
}

// holdProbes sends GET /probe/block over each of rts and returns once the
// app holds all of them. Their requests end with ctx, and the test waits
// for them; the app lets go of those still held when the test ends.
func holdProbes(t *testing.T, ctx context.Context, m mode, o *opener, rts ...http.RoundTripper) *heldProbes {
	t.Helper()
	h := &heldProbes{ctx: ctx, o: o, answers: make(chan heldAnswer, len(rts)), n: len(rts)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for ; h.held > 0; h.held-- {
			o.block <- struct{}{} // the app's handlers wait for it, whatever ctx says
		}
		wg.Wait()
	})
	for i, rt := range rts {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url("localhost", "/probe/block"), nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { h.answers <- roundTripAll(i, rt, req) })
	}
	for range rts {
		select {
		case <-o.arrived:
			h.held++
		case a := <-h.answers:
			t.Fatalf("held probe %d ended before the app held it: %d %q %v", a.i, a.status, a.body, a.err)
		case <-ctx.Done():
			t.Fatalf("held probes: not all %d reached the app: %v", len(rts), ctx.Err())
		}
	}
	return h
}

// roundTripAll sends req over rt and reads the answer.
func roundTripAll(i int, rt http.RoundTripper, req *http.Request) heldAnswer {
	res, err := rt.RoundTrip(req)
	if err != nil {
		return heldAnswer{i: i, err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return heldAnswer{i: i, status: res.StatusCode, body: string(b), err: err}
}

// release lets the app answer the held probes and returns their answers,
// in the order of holdProbes's rts.
func (h *heldProbes) release(t *testing.T) []heldAnswer {
	t.Helper()
	for ; h.held > 0; h.held-- {
		select {
		case h.o.block <- struct{}{}:
		case <-h.ctx.Done():
			t.Fatalf("held probes: release: %v", h.ctx.Err())
		}
	}
	out := make([]heldAnswer, h.n)
	for range h.n {
		select {
		case a := <-h.answers:
			out[a.i] = a
		case <-h.ctx.Done():
			t.Fatalf("held probes: answers: %v", h.ctx.Err())
		}
	}
	return out
}

// tunnelTransport returns a transport that sends extended CONNECT over
// mode m (h2 or h3) to addr.
func tunnelTransport(t *testing.T, m mode, addr string, e *env) http.RoundTripper {
	t.Helper()
	tc := &tls.Config{RootCAs: e.pki.caPool}
	if m == h2 {
		tr := &http2.Transport{TLSClientConfig: tc, DialTLSContext: func(ctx context.Context, network, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	tr := &http3.Transport{TLSClientConfig: tc, Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
		return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
	}}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// tunnelRequest is an extended CONNECT to the fake app's tunnel echo whose
// stream carries body.
func tunnelRequest(t *testing.T, ctx context.Context, m mode, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, m.url("localhost", "/flood/tunnel"), body)
	if err != nil {
		t.Fatal(err)
	}
	if m == h2 {
		req.Header.Set(":protocol", "websocket")
	} else {
		req.Proto = "websocket"
	}
	return req
}
