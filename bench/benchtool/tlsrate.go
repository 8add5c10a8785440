package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// runTLS opens TLS connections as fast as -w workers can, each sending one
// GET / over HTTP/1.1 and reading the answer before it closes. It runs
// twice: full handshakes (no session cache), then resumed ones (a
// tls.ClientSessionCache per worker, filled by a first connection in the
// warm-up). It prints connections per second, p50/p99 of connect to
// answer, how many handshakes resumed (ConnectionState().DidResume) and,
// with -pids, the CPU time of those processes per connection.
func runTLS(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tls", flag.ContinueOnError)
	addr := fs.String("addr", "", "`HOST:PORT` of the TLS listener")
	caFile := fs.String("ca", "", "PEM `file` of the server's certificate (ServerName localhost)")
	workers := fs.Int("w", 8, "workers, each with one connection at a time")
	dur := fs.Duration("d", 5*time.Second, "measured time of each mode")
	warm := fs.Duration("warm", time.Second, "warm-up time of each mode, not counted")
	pidList := fs.String("pids", "", "comma-separated `pids` whose CPU time per connection to report")
	version := fs.String("version", "1.3", "TLS `version`: 1.2 or 1.3")
	curve := fs.String("curve", "x25519", "key exchange `group` offered: x25519 (what OpenSSL 3.0 peers pick) or default (Go's, with X25519MLKEM768 first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base, err := loadCA(*caFile)
	if err != nil {
		return err
	}
	switch *version {
	case "1.2":
		base.MinVersion, base.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "1.3":
		base.MinVersion = tls.VersionTLS13
	default:
		return fmt.Errorf("unknown -version %q", *version)
	}
	switch *curve {
	case "x25519":
		// Go's client offers X25519MLKEM768 first; nginx and HAProxy
		// (OpenSSL 3.0) take X25519 and Go servers the hybrid, which costs
		// more. One group for all compares the servers, not the groups.
		base.CurvePreferences = []tls.CurveID{tls.X25519}
	case "default":
	default:
		return fmt.Errorf("unknown -curve %q", *curve)
	}
	base.NextProtos = []string{"http/1.1"}
	var pids []int
	if *pidList != "" {
		if pids, err = parsePids(*pidList); err != nil {
			return err
		}
	}
	for _, mode := range []string{"full", "resumed"} {
		cfgs := make([]*tls.Config, *workers)
		for i := range cfgs {
			cfgs[i] = base.Clone()
			if mode == "resumed" {
				cfgs[i].ClientSessionCache = tls.NewLRUClientSessionCache(4)
			} else {
				cfgs[i].SessionTicketsDisabled = true
			}
		}
		var resumed, total atomic.Int64
		res, err := runLoad(ctx, *workers, *warm, *dur, pids, func(ctx context.Context, w int) error {
			did, err := tlsOnce(ctx, *addr, cfgs[w])
			total.Add(1)
			if did {
				resumed.Add(1)
			}
			return err
		})
		if err != nil {
			return err
		}
		res.print(out, "tls_"+mode+"_", len(pids) > 0)
		// Over warm-up and window alike: the share of handshakes that resumed.
		result(out, "tls_"+mode+"_resumed_share", "%.3f", float64(resumed.Load())/float64(max(total.Load(), 1)))
	}
	return nil
}

// tlsOnce dials addr, completes the handshake, sends GET / and reads the
// answer; it reports whether the handshake resumed a session.
func tlsOnce(ctx context.Context, addr string, cfg *tls.Config) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	tc := c.(*tls.Conn)
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return false, fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return false, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	// In TLS 1.3 the ticket arrives after the handshake: reading the
	// response has processed it, so the cache holds it for the next dial.
	return tc.ConnectionState().DidResume, nil
}
