package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// runH3 is a closed-loop HTTP/3 load: -c QUIC connections (one
// http3.Transport each), each with -m requests in flight, for -d after a
// warm-up of -warm. It prints requests per second, p50/p99 latency and,
// with -pids, the CPU time of those processes per request (h2load here is
// built without QUIC).
func runH3(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("h3", flag.ContinueOnError)
	url := fs.String("url", "", "`URL` to GET (https://127.0.0.1:PORT/)")
	caFile := fs.String("ca", "", "PEM `file` of the server's certificate (ServerName localhost)")
	conns := fs.Int("c", 10, "QUIC connections")
	streams := fs.Int("m", 10, "concurrent requests per connection")
	dur := fs.Duration("d", 5*time.Second, "measured time")
	warm := fs.Duration("warm", time.Second, "warm-up time, not counted")
	pidList := fs.String("pids", "", "comma-separated `pids` whose CPU time per request to report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tc, err := loadCA(*caFile)
	if err != nil {
		return err
	}
	var pids []int
	if *pidList != "" {
		if pids, err = parsePids(*pidList); err != nil {
			return err
		}
	}
	trs := make([]*http3.Transport, *conns)
	for i := range trs {
		trs[i] = &http3.Transport{TLSClientConfig: tc.Clone(), QUICConfig: &quic.Config{MaxIdleTimeout: 30 * time.Second}}
		defer trs[i].Close()
	}
	// Open every connection first: a server that does not speak HTTP/3
	// fails here, not as a run of errors.
	for i, tr := range trs {
		if err := h3Get(ctx, tr, *url); err != nil {
			return fmt.Errorf("h3 connection %d: %w", i, err)
		}
	}
	// Worker w uses connection w mod -c: -m requests in flight on each.
	res, err := runLoad(ctx, *conns**streams, *warm, *dur, pids, func(ctx context.Context, w int) error {
		return h3Get(ctx, trs[w%*conns], *url)
	})
	if err != nil {
		return err
	}
	res.print(out, "h3_", len(pids) > 0)
	return nil
}

// h3Get sends GET url over tr and reads the whole response.
func h3Get(ctx context.Context, tr *http3.Transport, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
