package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// runGets sends exactly n GET / to addr from c clients (n/c each, one
// after another on each) and checks every answer: a fixed amount of work,
// for counts that do not depend on time (instructions per request under
// callgrind, bench/instructions.sh). Each client keeps one connection
// alive, or with -close opens a new one per request ("Connection: close",
// the answer read to the server's close), as wrk's close workload does.
func runGets(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gets", flag.ContinueOnError)
	addr := fs.String("addr", "", "front door `host:port`")
	n := fs.Int("n", 20000, "requests in all")
	c := fs.Int("c", 50, "clients (connections at a time)")
	closeEach := fs.Bool("close", false, "a new connection per request, with Connection: close")
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
			if *closeEach {
				errs <- getsClose(ctx, *addr, per)
			} else {
				errs <- getsOn(ctx, *addr, per)
			}
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
	conn, done, err := dialGets(ctx, &d, addr)
	if err != nil {
		return err
	}
	defer done()
	br := bufio.NewReader(conn)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	for range n {
		if err := req.Write(conn); err != nil {
			return fmt.Errorf("gets: write: %w", err)
		}
		if _, err := readAnswer(br, req); err != nil {
			return err
		}
	}
	return nil
}

// readAnswer reads the answer to req from br, body and all, and checks
// that it is a 200.
func readAnswer(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	res, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("gets: read: %w", err)
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("gets: body: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gets: status %d", res.StatusCode)
	}
	return res, nil
}

// getsClose sends n GET / with "Connection: close", each on a new
// connection after the answer before, and reads each answer to the
// server's close.
func getsClose(ctx context.Context, addr string, n int) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	req.Close = true
	for range n {
		if err := getClose(ctx, &d, addr, req); err != nil {
			return err
		}
	}
	return nil
}

// getClose sends req on a new connection and reads the answer to EOF.
func getClose(ctx context.Context, d *net.Dialer, addr string, req *http.Request) error {
	conn, done, err := dialGets(ctx, d, addr)
	if err != nil {
		return err
	}
	defer done()
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("gets: write: %w", err)
	}
	br := bufio.NewReader(conn)
	res, err := readAnswer(br, req)
	if err != nil {
		return err
	}
	if !res.Close {
		return errors.New("gets: the answer does not close the connection")
	}
	// The server closes after the answer: nothing more comes.
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return fmt.Errorf("gets: after the answer: %d bytes, %v (want the close)", n, err)
	}
	return nil
}

// dialGets connects to addr; the connection's calls end when ctx does.
// done closes it.
func dialGets(ctx context.Context, d *net.Dialer, addr string) (net.Conn, func(), error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("gets: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	return conn, func() { stop(); conn.Close() }, nil
}
