package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runColdstart measures start and restart times (see the package doc).
func runColdstart(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	app := fs.String("app", "", "the app's command line (split at spaces); it listens on $ASPNETCORE_PORT")
	var gates multiFlag
	fs.Var(&gates, "gatehouse", "`label=BIN=DIR`: gatehouse binary serving the app folder DIR; repeatable")
	n := fs.Int("n", 10, "starts of each")
	restarts := fs.Int("restarts", 3, "kill -9 and restart cycles per Gatehouse start")
	prefix := fs.String("prefix", "", "put this before every result key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := strings.Fields(*app)
	if len(argv) == 0 {
		return errors.New("-app is required")
	}
	type target struct {
		label, bin, dir            string
		cold, restart, coldX, rstX []time.Duration
	}
	var targets []*target
	for _, g := range gates {
		label, rest, _ := strings.Cut(g, "=")
		bin, dir, ok := strings.Cut(rest, "=")
		if !ok {
			return fmt.Errorf("-gatehouse %q: want label=BIN=DIR", g)
		}
		targets = append(targets, &target{label: label, bin: bin, dir: dir})
	}
	// Rounds interleave the app alone with each Gatehouse (in an order that
	// rotates per round), and the extra time is taken within a round, so a
	// busy machine shifts both sides.
	var direct, directRestart []time.Duration
	for round := range *n {
		own, ownRs, err := directOnce(ctx, argv, *restarts)
		if err != nil {
			return fmt.Errorf("app alone: %w", err)
		}
		direct = append(direct, own)
		directRestart = append(directRestart, ownRs...)
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			c, rs, err := gatehouseOnce(ctx, t.bin, t.dir, *restarts)
			if err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
			t.cold = append(t.cold, c)
			t.coldX = append(t.coldX, c-own)
			for i, r := range rs {
				t.restart = append(t.restart, r)
				t.rstX = append(t.rstX, r-ownRs[i])
			}
		}
	}
	result(out, *prefix+"app_first_answer_ms", "%.2f", ms(median(direct)))
	result(out, *prefix+"app_restart_ms", "%.2f", ms(median(directRestart)))
	for _, t := range targets {
		l := *prefix + t.label
		result(out, l+"_cold_ms", "%.2f", ms(median(t.cold)))
		result(out, l+"_cold_extra_ms", "%.2f", ms(median(t.coldX)))
		result(out, l+"_restart_ms", "%.2f", ms(median(t.restart)))
		result(out, l+"_restart_extra_ms", "%.2f", ms(median(t.rstX)))
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// directOnce starts the app on a free port and returns the time from exec
// to its first answer to GET /, as launch measures it. It then restarts the
// app the given number of times as a launcher would, and returns the time
// of each from kill -9 of the app, through waiting for its exit and exec'ing
// it again, to the answer of the new process.
func directOnce(ctx context.Context, argv []string, restarts int) (time.Duration, []time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	env, addr := []string{"ASPNETCORE_PORT=" + strconv.Itoa(port)}, "127.0.0.1:"+strconv.Itoa(port)
	l, cmd, err := launch(ctx, argv, env, addr)
	defer func() {
		if cmd != nil {
			stopGroup(cmd, syscall.SIGKILL)
		}
	}()
	if err != nil {
		return 0, nil, err
	}
	var rs []time.Duration
	for range restarts {
		start := time.Now()
		stopGroup(cmd, syscall.SIGKILL)
		cmd = nil
		if _, cmd, err = launch(ctx, argv, env, addr); err != nil {
			return 0, nil, fmt.Errorf("restart: %w", err)
		}
		rs = append(rs, time.Since(start))
	}
	return l.first, rs, nil
}

// gatehouseOnce starts `BIN serve DIR` as systemd starts a Type=notify
// service, and waits for its READY=1: Gatehouse has bound its listeners
// and opened its apps. (It binds before it opens the apps, so a request
// sent at its first accept would also wait for the rest of Gatehouse's own
// start, which is the start-up figure's, not the app's.) The first request
// (which starts the app) then goes out on a new connection, and cold is
// the time from sending it to its answer. It then times the given number
// of restarts: from kill -9 of the app to the answer to a request sent at
// once (Gatehouse sees the exit and starts the app again on that request).
func gatehouseOnce(ctx context.Context, bin, dir string, restarts int) (time.Duration, []time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	argv := []string{bin, "serve", "--listen", addr, "--log-level", "error"}
	if os.Geteuid() == 0 && allowsRootFlag(bin) {
		argv = append(argv, "--allow-root") // builds that refuse root apps by default
	}
	cmd, err := startNotified(ctx, append(argv, dir))
	if cmd != nil {
		defer stopGroup(cmd, syscall.SIGTERM)
	}
	if err != nil {
		return 0, nil, err
	}
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, nil, fmt.Errorf("connect after READY=1: %w", err)
	}
	start := time.Now()
	err = getOn(c)
	cold := time.Since(start)
	c.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("first request: %w", err)
	}
	var rs []time.Duration
	for range restarts {
		body, err := get(ctx, "http://"+addr+"/pid")
		if err != nil {
			return 0, nil, fmt.Errorf("GET /pid: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(body))
		if err != nil {
			return 0, nil, fmt.Errorf("GET /pid: %q", body)
		}
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return 0, nil, fmt.Errorf("kill app: %w", err)
		}
		// As for the cold start: one connection, GET / on it at once.
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, nil, fmt.Errorf("connect after kill -9: %w", err)
		}
		err = getOn(c)
		c.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("request after kill -9: %w", err)
		}
		rs = append(rs, time.Since(start))
	}
	return cold, rs, nil
}

// startNotified execs argv in a process group of its own with NOTIFY_SOCKET
// set, as systemd starts a Type=notify service, and returns once the
// process sent READY=1. It returns the command, if it started, for the
// caller to stop.
func startNotified(ctx context.Context, argv []string) (*exec.Cmd, error) {
	dir, err := os.MkdirTemp("", "benchtool-notify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	defer conn.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return cmd, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return cmd, fmt.Errorf("%s sent no READY=1: %w", argv[0], err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if strings.TrimSpace(line) == "READY=1" {
				return cmd, nil
			}
		}
	}
}

// get makes one GET on a new connection and returns the body of a 200.
func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %.200s", res.Status, b)
	}
	return string(b), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stopGroup sends sig to cmd's process group and waits for cmd, killing the
// group if it is still there after 15 s.
func stopGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// allowsRootFlag reports whether bin's serve knows --allow-root (builds
// before it let apps run as root without it).
func allowsRootFlag(bin string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return strings.Contains(string(out), "allow-root")
}
