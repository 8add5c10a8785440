// Command testapp is a small backend used by Gatehouse's integration and
// end-to-end tests. It serves with the integration package, so it checks
// the pairing token, answers the module's shutdown request and applies the
// forwarded headers, and it can misbehave on request.
//
// It listens where [integration.Listen] says (LISTEN_FDS, else
// 127.0.0.1:$ASPNETCORE_PORT, else -addr) and prints one line
//
//	listening on 127.0.0.1:PORT
//
// to stdout once it accepts connections. It stops gracefully on SIGTERM,
// SIGINT or the module's shutdown request, printing "shutting down
// (<reason>)" and finally "stopped", and exits 0.
//
// Endpoints (any other path answers like /):
//
//	/              "Hello from testapp pid=<pid>"
//	/env?name=X    value of env var X; 404 if it is not set
//	/headers       JSON: the request headers as the handler sees them, plus
//	               what arrived before the integration middleware rewrote
//	               anything (raw headers, X-Forwarded-For, X-Forwarded-Proto,
//	               RemoteAddr, request URI), the resulting remote_addr, scheme, path_base
//	               and path
//	/pid           the process id
//	/childpid      the pid of the -spawn-child grandchild (404 without it)
//	/crash         exits at once with status 3, writing no response
//	/sleep?d=5s    sleeps d (or until the client goes away), then 200
//	/stream?n=5    n lines, each flushed (optional &delay=100ms between
//	               them), chunked, with the trailer "X-Trailer: done"
//	/echo          streams the request body back as it arrives
//	/ws            WebSocket echo of every message, over HTTP/1.1 (upgrade)
//	               or HTTP/2 (extended CONNECT, RFC 8441; with -h2c and
//	               GODEBUG=http2xconnect=1)
//	/healthz       503 until -ready-after has passed since listening, then 200
//	/big?n=BYTES   BYTES bytes of a repeating a–z pattern, with Content-Length
//	               (&type=text/plain sets the Content-Type, default
//	               application/octet-stream)
//	/redirect      302 to /
//	/discard       reads the request body to its end, answers "N bytes"
//	/activation    LISTEN_FDS and LISTEN_PID as they were at start, and the pid
//
// Flags; each can also be set by the environment variable shown, which the
// flag overrides:
//
//	-addr ADDR            fallback listen address (TESTAPP_ADDR; default 127.0.0.1:0)
//	-startup-delay D      sleep D before listening (TESTAPP_STARTUP_DELAY)
//	-exit-at-start N      print a few lines to stdout and stderr, then exit
//	                      with status N before listening (TESTAPP_EXIT_AT_START;
//	                      -1, the default, means don't)
//	-ignore-sigterm       ignore SIGTERM and the shutdown request (it is still
//	                      answered with 202); only SIGINT or SIGKILL stop it
//	                      (TESTAPP_IGNORE_SIGTERM)
//	-shutdown-delay D     after stopping the server on SIGTERM or the shutdown
//	                      request, wait D before exiting (TESTAPP_SHUTDOWN_DELAY)
//	-spawn-child          start a grandchild "sleep 300" in testapp's own
//	                      process group, sharing its stdout and stderr, and
//	                      leave it running, to check that the supervisor
//	                      kills the whole group; its pid is printed as
//	                      "child pid=N" (TESTAPP_SPAWN_CHILD)
//	-notify               send READY=1 to $NOTIFY_SOCKET (unixgram) after
//	                      listening (TESTAPP_NOTIFY)
//	-ready-after D        /healthz answers 503 for D after listening (TESTAPP_READY_AFTER)
//	-flood                write 100 lines of stdout every -flood-interval
//	                      until stopped (TESTAPP_FLOOD)
//	-flood-interval D     default 10ms, about 1 MB/s (TESTAPP_FLOOD_INTERVAL)
//	-h2c                  speak only HTTP/2 with prior knowledge (the app
//	                      protocol h2c) (TESTAPP_H2C)
//	-no-token-check       ignore ASPNETCORE_TOKEN: every request is accepted
//	                      and, as with ASP.NET Core without the IIS middleware,
//	                      the shutdown request is not recognised (POST
//	                      /iisintegration answers 200 like /), so the module
//	                      must fall back to SIGTERM (TESTAPP_NO_TOKEN_CHECK)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/integration"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(int(ee))
	case err != nil:
		fmt.Fprintln(os.Stderr, "testapp:", err)
		os.Exit(1)
	}
}

// exitError asks main to exit with that status.
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

type options struct {
	addr          string
	startupDelay  time.Duration
	exitAtStart   int
	ignoreSIGTERM bool
	shutdownDelay time.Duration
	spawnChild    bool
	notify        bool
	readyAfter    time.Duration
	flood         bool
	floodInterval time.Duration
	noTokenCheck  bool
	h2c           bool
	static        string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("testapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", envString("TESTAPP_ADDR", "127.0.0.1:0"), "fallback listen address")
	fs.DurationVar(&o.startupDelay, "startup-delay", envDuration("TESTAPP_STARTUP_DELAY", 0), "sleep before listening")
	fs.IntVar(&o.exitAtStart, "exit-at-start", envInt("TESTAPP_EXIT_AT_START", -1), "exit with this status before listening (-1: don't)")
	fs.BoolVar(&o.ignoreSIGTERM, "ignore-sigterm", envBool("TESTAPP_IGNORE_SIGTERM"), "ignore SIGTERM and the shutdown request")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", envDuration("TESTAPP_SHUTDOWN_DELAY", 0), "wait before exiting after a stop request")
	fs.BoolVar(&o.spawnChild, "spawn-child", envBool("TESTAPP_SPAWN_CHILD"), "start a grandchild 'sleep 300' in the same process group")
	fs.BoolVar(&o.notify, "notify", envBool("TESTAPP_NOTIFY"), "send READY=1 to $NOTIFY_SOCKET after listening")
	fs.DurationVar(&o.readyAfter, "ready-after", envDuration("TESTAPP_READY_AFTER", 0), "/healthz is 503 for this long after listening")
	fs.BoolVar(&o.flood, "flood", envBool("TESTAPP_FLOOD"), "write stdout continuously")
	fs.DurationVar(&o.floodInterval, "flood-interval", envDuration("TESTAPP_FLOOD_INTERVAL", 10*time.Millisecond), "pause between flood batches")
	fs.StringVar(&o.static, "static", "", "serve the files of this `folder` under /<folder>/, as a static-file host would")
	fs.BoolVar(&o.h2c, "h2c", envBool("TESTAPP_H2C"), "speak only HTTP/2 with prior knowledge")
	fs.BoolVar(&o.noTokenCheck, "no-token-check", envBool("TESTAPP_NO_TOKEN_CHECK"), "accept requests without the pairing token")
	return o, fs.Parse(args)
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return exitError(2)
	}
	pid := os.Getpid()
	if o.exitAtStart >= 0 {
		fmt.Fprintf(stdout, "testapp pid=%d starting\n", pid)
		fmt.Fprintf(stdout, "testapp: -exit-at-start %d, exiting before listening\n", o.exitAtStart)
		fmt.Fprintf(stderr, "testapp: fatal: configured to exit with status %d\n", o.exitAtStart)
		return exitError(o.exitAtStart)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	fmt.Fprintf(stdout, "testapp pid=%d starting\n", pid)
	// The grandchild starts before SIGTERM may be ignored: an ignored
	// signal stays ignored across exec.
	var childPID int
	if o.spawnChild {
		if childPID, err = spawnChild(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "child pid=%d\n", childPID)
	}

	// ctx ends on a stop signal. With -ignore-sigterm only SIGINT counts.
	stopSignals := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if o.ignoreSIGTERM {
		signal.Ignore(syscall.SIGTERM)
		stopSignals = stopSignals[:1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()

	if o.startupDelay > 0 {
		select {
		case <-time.After(o.startupDelay):
		case <-ctx.Done():
			fmt.Fprintln(stdout, "stopped during startup delay")
			return nil
		}
	}

	// Remember the socket-activation variables: Listen unsets them, as
	// systemd's convention asks, and /activation reports them to tests.
	activation = fmt.Sprintf("LISTEN_FDS=%s LISTEN_PID=%s pid=%d", os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID"), pid)
	ln, err := integration.Listen(o.addr)
	if err != nil {
		return err
	}
	app := &app{opts: o, pid: pid, childPID: childPID, readyAt: time.Now().Add(o.readyAfter)}
	return app.serve(ctx, ln, stdout, log)
}

// app holds what the handlers need.
type app struct {
	opts     options
	pid      int
	childPID int
	readyAt  time.Time

	// closing ends when the server has shut down, so WebSocket handlers,
	// which http.Server.Shutdown does not wait for, end too; websockets
	// counts them.
	closing    context.Context
	websockets sync.WaitGroup
}

func (a *app) serve(ctx context.Context, ln net.Listener, stdout io.Writer, log *slog.Logger) error {
	cfg := integration.FromEnv()
	if !cfg.Enabled() {
		cfg = integration.Config{}
	}
	if a.opts.noTokenCheck {
		cfg.Token = ""
	}
	closing, closed := context.WithCancel(context.Background())
	defer closed()
	a.closing = closing
	mw := &integration.Middleware{Next: a.routes(), Config: cfg, Logger: log}
	srv := &http.Server{
		Handler:           recordRaw(mw),
		ReadHeaderTimeout: 10 * time.Second, // the proxy sends headers at once
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if a.opts.h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
		// Shutdown waits for HTTP/2 streams, WebSockets among them: they
		// are sent their close as it starts.
		srv.RegisterOnShutdown(closed)
	}

	serveErr := make(chan error, 1)
	go serveLoop(srv, ln, serveErr)
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	var wg sync.WaitGroup
	defer wg.Wait()
	floodCtx, stopFlood := context.WithCancel(ctx)
	defer stopFlood()
	if a.opts.flood {
		wg.Go(func() { flood(floodCtx, stdout, a.opts.floodInterval) })
	}
	if a.opts.notify {
		if err := notifyReady(); err != nil {
			log.Warn("notify", "error", err)
		}
	}

	shutdownReq := mw.ShutdownRequested()
	if a.opts.ignoreSIGTERM {
		shutdownReq = nil
	}
	var reason string
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		reason = "signal"
	case <-shutdownReq:
		reason = "shutdown request"
	}
	stopFlood()
	fmt.Fprintf(stdout, "shutting down (%s)\n", reason)

	// 5 s: well under Gatehouse's and ANCM's default shutdownTimeLimit (10 s).
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	closed()
	a.websockets.Wait() // each closes within websocket's own 5 s close handshake limit
	<-serveErr
	if a.opts.shutdownDelay > 0 {
		fmt.Fprintf(stdout, "waiting %s before exiting\n", a.opts.shutdownDelay)
		time.Sleep(a.opts.shutdownDelay)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

func serveLoop(srv *http.Server, ln net.Listener, errc chan<- error) {
	errc <- srv.Serve(ln)
}

// spawnChild starts "sleep 300" in testapp's process group, sharing its
// stdout and stderr (so a supervisor that drains the pipes sees them held
// open until the grandchild dies), and reaps it in the background. It is
// left running on exit on purpose.
func spawnChild() (int, error) {
	cmd := exec.Command("sleep", "300")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("spawn child: %w", err)
	}
	go cmd.Wait() // reaps the child if the group is killed; ends with the process otherwise
	return cmd.Process.Pid, nil
}

// notifyReady sends READY=1 to $NOTIFY_SOCKET, as sd_notify does.
func notifyReady() error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return errors.New("NOTIFY_SOCKET is not set")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial notify socket: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("send READY=1: %w", err)
	}
	return nil
}

// flood writes batches of 100 lines to w every interval until ctx ends.
func flood(ctx context.Context, w io.Writer, interval time.Duration) {
	t := time.NewTicker(max(interval, time.Millisecond))
	defer t.Stop()
	buf := make([]byte, 0, 100*100)
	for n := 0; ; {
		buf = buf[:0]
		for range 100 {
			n++
			buf = fmt.Appendf(buf, "flood line %08d abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789\n", n)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}
