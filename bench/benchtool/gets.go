package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// runGets sends exactly n keep-alive GET / to addr over c connections (n/c
// each, one after another on each) and checks every answer: a fixed amount
// of work, for counts that do not depend on time (instructions per request
// under callgrind, bench/instructions.sh).
func runGets(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gets", flag.ContinueOnError)
	addr := fs.String("addr", "", "front door `host:port`")
	n := fs.Int("n", 20000, "requests in all")
	c := fs.Int("c", 50, "connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *c < 1 || *n < *c {
		return fmt.Errorf("gets: need 1 <= c <= n, have c=%d n=%d", *c, *n)
	}
	start := time.Now()
	errs := make(chan error, *c)
	var wg sync.WaitGroup
	for i := range *c {
		per := *n / *c
		if i < *n%*c {
			per++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- getsOn(ctx, *addr, per)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	result(out, "requests", "%d", *n)
	result(out, "seconds", "%.3f", time.Since(start).Seconds())
	return nil
}

// getsOn sends n GET / on one connection, each after the answer before.
func getsOn(ctx context.Context, addr string, n int) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gets: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	br := bufio.NewReader(conn)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	for range n {
		if err := req.Write(conn); err != nil {
			return fmt.Errorf("gets: write: %w", err)
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			return fmt.Errorf("gets: read: %w", err)
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("gets: body: %w", err)
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("gets: status %d", res.StatusCode)
		}
	}
	return nil
}
