//lint:file-ignore SA1019 x/net/http2.Transport gives one HTTP/2 connection per transport without Go's fallback to HTTP/1.1.

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
)

// runFlood measures how much one connection that relays as fast as it can
// slows small requests on another connection. Each round probes GET / for
// -dur on its own connection twice: once alone and once while a flood
// connection echoes -msg byte messages through the app's echo (the order
// alternates by round). The flood is a WebSocket on a hijacked HTTP/1.1
// connection (-flood ws, the app's /ws) or a full-duplex HTTP/2 stream
// (-flood h2, POST to the app's /echo), which the proxy relays as it
// relays a WebSocket over HTTP/2 (extended CONNECT): request body to the
// app, response to the client, flushed as it comes. It prints the median probe latency of each
// phase, their ratio per round and the median ratio, and the flood's
// throughput.
func runFlood(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	httpBase := fs.String("http", "", "`URL` of the http binding (http://127.0.0.1:PORT)")
	httpsBase := fs.String("https", "", "`URL` of the https binding, for -flood h2 and -probe h2")
	caFile := fs.String("ca", "", "PEM `file` of the https binding's certificate")
	kind := fs.String("flood", "ws", "flood `kind`: ws (HTTP/1.1 WebSocket) or h2 (full-duplex HTTP/2 stream)")
	probe := fs.String("probe", "h1", "probe `protocol`: h1 or h2")
	rounds := fs.Int("rounds", 5, "rounds")
	dur := fs.Duration("dur", 2*time.Second, "probing time of each phase")
	msg := fs.Int("msg", 64<<10, "flood message size in bytes")
	probeURL := fs.String("probe-url", "", "probe this `URL` instead (the app itself, say: how much the machine alone slows it)")
	floodHTTP := fs.String("flood-http", "", "`URL` the ws flood goes to instead of -http (the app itself, say)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var tc *tls.Config
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("read -ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("-ca holds no certificate")
		}
		tc = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	var target string
	var probeTr http.RoundTripper
	switch *probe {
	case "h1":
		target = *httpBase + "/"
		probeTr = &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}
	case "h2":
		target = *httpsBase + "/"
		probeTr = &http2.Transport{TLSClientConfig: tc}
	default:
		return fmt.Errorf("unknown -probe %q", *probe)
	}
	if *probeURL != "" {
		target = *probeURL
	}
	if *floodHTTP == "" {
		*floodHTTP = *httpBase
	}
	pc := &http.Client{Transport: probeTr, Timeout: 10 * time.Second}
	if _, err := probeOnce(ctx, pc, target); err != nil { // the app runs, the connection is open
		return fmt.Errorf("first probe: %w", err)
	}

	var ratios []float64
	var floodBytes int64
	var floodTime time.Duration
	for r := range *rounds {
		var alone, flooded time.Duration
		for i := range 2 {
			withFlood := (r+i)%2 == 1
			if !withFlood {
				lat, err := probeFor(ctx, pc, target, *dur)
				if err != nil {
					return err
				}
				alone = median(lat)
				continue
			}
			f, err := startFlood(ctx, *kind, *floodHTTP, *httpsBase, tc, *msg)
			if err != nil {
				return err
			}
			t0, b0 := time.Now(), f.echoed.Load()
			lat, err := probeFor(ctx, pc, target, *dur)
			floodBytes += f.echoed.Load() - b0
			floodTime += time.Since(t0)
			ferr := f.stop()
			if err != nil {
				return err
			}
			if ferr != nil {
				return fmt.Errorf("flood: %w", ferr)
			}
			flooded = median(lat)
		}
		ratio := float64(flooded) / float64(alone)
		ratios = append(ratios, ratio)
		result(out, fmt.Sprintf("round%d", r+1), "alone_p50_us %d flooded_p50_us %d ratio %.2f",
			alone.Microseconds(), flooded.Microseconds(), ratio)
	}
	slices.Sort(ratios)
	result(out, "flood_kind", "%s probe %s", *kind, *probe)
	result(out, "probe_p50_ratio_median", "%.2f", ratios[len(ratios)/2])
	result(out, "flood_mib_s", "%.0f", float64(floodBytes)/(1<<20)/floodTime.Seconds())
	return nil
}

// probeOnce sends one GET and returns how long the whole answer took.
func probeOnce(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("probe: status %d", res.StatusCode)
	}
	return time.Since(t0), err
}

// probeFor probes one after the other for d and returns the latencies.
func probeFor(ctx context.Context, c *http.Client, url string, d time.Duration) ([]time.Duration, error) {
	var lat []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		l, err := probeOnce(ctx, c, url)
		if err != nil {
			return nil, err
		}
		lat = append(lat, l)
	}
	return lat, nil
}

// flood is one connection echoing messages as fast as it can: a writer
// and a reader goroutine, both ended by stop.
type flood struct {
	echoed atomic.Int64 // bytes read back
	cancel context.CancelFunc
	close  func()
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func (f *flood) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// stop ends the flood and returns the first error it met before stop.
func (f *flood) stop() error {
	f.mu.Lock()
	err := f.err
	f.err = errors.New("stopped") // later errors come from stopping
	f.mu.Unlock()
	f.cancel()
	f.close()
	f.wg.Wait()
	return err
}

// startFlood opens the flood connection and returns once an echo came back.
func startFlood(ctx context.Context, kind, httpBase, httpsBase string, tc *tls.Config, size int) (*flood, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &flood{cancel: cancel}
	payload := make([]byte, size)
	// writeAll writes messages until ctx ends or a write fails.
	writeAll := func(write func() error) {
		f.wg.Go(func() {
			for ctx.Err() == nil {
				if err := write(); err != nil {
					f.fail(fmt.Errorf("write: %w", err))
					return
				}
			}
		})
	}
	var read func() (int, error)
	switch kind {
	case "ws":
		c, _, err := websocket.Dial(ctx, "ws"+httpBase[len("http"):]+"/ws", nil)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("dial the flood WebSocket: %w", err)
		}
		c.SetReadLimit(int64(size) + 1)
		f.close = func() { c.CloseNow() }
		writeAll(func() error { return c.Write(ctx, websocket.MessageBinary, payload) })
		read = func() (int, error) {
			_, m, err := c.Read(ctx)
			return len(m), err
		}
	case "h2":
		tr := &http2.Transport{TLSClientConfig: tc}
		pr, pw := io.Pipe()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, httpsBase+"/echo", pr)
		if err != nil {
			cancel()
			return nil, err
		}
		// The app answers with its first echo: the body must flow before
		// the response head comes.
		f.close = func() {
			pw.CloseWithError(net.ErrClosed)
			tr.CloseIdleConnections()
		}
		writeAll(func() error { _, err := pw.Write(payload); return err })
		res, err := tr.RoundTrip(req)
		if err != nil {
			_ = f.stop()
			return nil, fmt.Errorf("open the flood stream: %w", err)
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			_ = f.stop()
			return nil, fmt.Errorf("open the flood stream: %s", res.Status)
		}
		f.close = func() {
			pw.CloseWithError(net.ErrClosed)
			res.Body.Close()
			tr.CloseIdleConnections()
		}
		buf := make([]byte, size)
		read = func() (int, error) { return res.Body.Read(buf) }
	default:
		cancel()
		return nil, fmt.Errorf("unknown -flood %q", kind)
	}
	first := make(chan struct{})
	var once sync.Once
	f.wg.Go(func() {
		for ctx.Err() == nil {
			n, err := read()
			if n > 0 {
				f.echoed.Add(int64(n))
				once.Do(func() { close(first) })
			}
			if err != nil {
				f.fail(fmt.Errorf("read: %w", err))
				return
			}
		}
	})
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-first:
		return f, nil
	case <-t.C:
		_ = f.stop()
		return nil, errors.New("no echo from the flood connection within 10s")
	}
}
