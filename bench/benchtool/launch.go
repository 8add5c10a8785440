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
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// launched is what an outside launcher sees of a server it starts: the
// time from exec until a TCP connect to its port succeeds, and until the
// answer to a GET / sent on that connection has been read whole.
type launched struct {
	listen, first time.Duration
}

// launch execs argv (with env added) in a process group of its own, polls
// addr with connect every 100 µs until it accepts, then sends GET / on that
// connection and reads the answer, which must be a 200. It returns the
// command, still running, for the caller to stop.
//
// This is the measurement of a launcher (systemd, a process manager, a
// test harness): it sees the listening socket, not log lines, and a
// failed connect to a loopback port costs the starting server almost
// nothing, unlike a poll with whole HTTP requests.
func launch(ctx context.Context, argv, env []string, addr string) (launched, *exec.Cmd, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return launched{}, nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	var l launched
	c, err := pollConnect(ctx, addr, start.Add(30*time.Second))
	if err != nil {
		return l, cmd, err
	}
	defer c.Close()
	l.listen = time.Since(start)
	if err := getOn(c); err != nil {
		return l, cmd, fmt.Errorf("first request: %w", err)
	}
	l.first = time.Since(start)
	return l, cmd, nil
}

// pollConnect connects to addr every 100 µs until it succeeds or the
// deadline passes.
func pollConnect(ctx context.Context, addr string, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil, fmt.Errorf("%s never accepted a connection", addr)
}

// getOn sends GET / with Connection: close on c and reads the whole
// answer, which must be a 200.
func getOn(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s: %.200s", res.Status, b)
	}
	return nil
}

// runStartup measures start-up as an outside launcher sees it, for each
// -target in turn, n rounds, the order rotating per round.
func runStartup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("startup", flag.ContinueOnError)
	var targets multiFlag
	fs.Var(&targets, "target", "`label=ADDR=[NAME=VALUE…] CMD ARGS…`: a server that listens on ADDR once started; repeatable")
	n := fs.Int("n", 10, "starts of each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type target struct {
		label, addr   string
		env, argv     []string
		listen, first []time.Duration
	}
	var ts []*target
	for _, s := range targets {
		label, rest, _ := strings.Cut(s, "=")
		addr, cmdline, ok := strings.Cut(rest, "=")
		// Leading NAME=VALUE words are the command's environment, as in a
		// shell, so no env(1) exec sits between the launcher and the server.
		argv := strings.Fields(cmdline)
		var env []string
		for len(argv) > 0 && strings.Contains(argv[0], "=") {
			env, argv = append(env, argv[0]), argv[1:]
		}
		if !ok || len(argv) == 0 {
			return fmt.Errorf("-target %q: want label=ADDR=[NAME=VALUE…] CMD ARGS", s)
		}
		ts = append(ts, &target{label: label, addr: addr, env: env, argv: argv})
	}
	if len(ts) == 0 {
		return errors.New("no -target")
	}
	for r := range *n {
		for i := range ts {
			t := ts[(i+r)%len(ts)]
			l, cmd, err := launch(ctx, t.argv, t.env, t.addr)
			if cmd != nil {
				stopGroup(cmd, syscall.SIGTERM)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
			t.listen = append(t.listen, l.listen)
			t.first = append(t.first, l.first)
		}
	}
	for _, t := range ts {
		result(out, t.label+"_exec_to_listen_ms", "%.2f", ms(median(t.listen)))
		result(out, t.label+"_exec_to_first_answer_ms", "%.2f", ms(median(t.first)))
	}
	return nil
}
