package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// runIdle opens n keep-alive connections to addr, makes one GET / on each,
// leaves them idle and reports how much the pids' RSS grew per connection.
func runIdle(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	addr := fs.String("addr", "", "front door `host:port`")
	n := fs.Int("n", 1000, "idle connections to open")
	pidList := fs.String("pids", "", "comma-separated `pids` of the front door's processes")
	settle := fs.Duration("settle", 2*time.Second, "wait before reading RSS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pids, err := parsePids(*pidList)
	if err != nil {
		return err
	}
	before, err := rssKiB(pids)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	for i := range *n {
		c, err := d.DialContext(ctx, "tcp", *addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if err := oneGet(c); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
	}
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	after, err := rssKiB(pids)
	if err != nil {
		return err
	}
	result(out, "rss_before_kib", "%d", before)
	result(out, "rss_idle_conns_kib", "%d", after)
	result(out, "idle_conns", "%d", *n)
	result(out, "kib_per_idle_conn", "%.2f", float64(after-before)/float64(*n))
	return nil
}

// oneGet sends GET / on c and reads the whole response, leaving c open.
func oneGet(c net.Conn) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		return fmt.Errorf("send GET: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}
