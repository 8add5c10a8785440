package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// ctlFlags find the running gatehouse, as reload and recycle always have.
type ctlFlags struct {
	pidFile string
	socket  string
	addr    string
	token   string
	timeout time.Duration
}

func (f *ctlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.pidFile, "pid-file", "", "pid `file` the running gatehouse was started with (serve --pid-file); its admin socket is beside it (default: look in $RUNTIME_DIRECTORY, /run/gatehouse, $XDG_RUNTIME_DIR/gatehouse, $TMPDIR/gatehouse-UID)")
	fs.StringVar(&f.socket, "admin", "", "admin `socket` of the running gatehouse (serve --admin)")
	fs.StringVar(&f.addr, "admin-addr", "", "call the admin API on this loopback `address` (serve --admin-addr) instead of the socket, with the token of --admin-token")
	fs.StringVar(&f.token, "admin-token", "", "token `file` for --admin-addr (serve --admin-token; default: beside the admin socket, gatehouse.sock → gatehouse.token)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "how long to wait for the outcome")
}

// client returns the admin client for the flags: the socket of --admin,
// the one beside --pid-file, or (neither given) the one FindSocket finds,
// which fails wrapping admin.ErrNotRunning when no gatehouse answers. It
// returns (nil, nil) when --pid-file names a file with no socket beside it
// (then only the pid-file signal path is left). With --admin-addr it reads
// the token file, which must be there.
func (f *ctlFlags) client() (*admin.Client, error) {
	path := f.socket
	if path == "" && f.pidFile != "" {
		path = admin.DefaultSocket(f.pidFile)
	}
	if f.addr != "" {
		tokenFile := f.token
		if tokenFile == "" && path == "" {
			path, _ = admin.FindSocket() // the token file is beside it
		}
		if tokenFile == "" {
			tokenFile = admin.TokenPath(path)
		}
		if tokenFile == "" {
			return nil, usageErr("--admin-addr: pass --admin-token FILE (or --admin SOCKET or --pid-file FILE, to find the token file beside the socket)")
		}
		token, err := admin.ReadToken(tokenFile)
		if err != nil {
			return nil, err
		}
		return &admin.Client{Addr: f.addr, Token: token}, nil
	}
	if path == "" {
		found, err := admin.FindSocket()
		if err != nil {
			return nil, err
		}
		return &admin.Client{Socket: found}, nil
	}
	if f.socket == "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return &admin.Client{Socket: path}, nil
}

// callErr turns a failed control call into the exit code scripts see: 3
// for a rejected configuration, 1 otherwise.
func callErr(err error) error {
	if errors.Is(err, admin.ErrInvalidConfig) {
		return configErr(err)
	}
	return err
}

// cmdControl runs recycle, stop, start or reload against the running
// gatehouse over its admin socket and waits for the outcome. Without an
// admin socket, reload and recycle of every app fall back to signalling the
// pid in --pid-file (SIGHUP, SIGUSR1) once it is checked to be a gatehouse;
// the outcome is then only in gatehouse's log.
func cmdControl(ctx context.Context, op string, args []string, stdout, stderr io.Writer) error {
	synopsis := map[string]string{
		"recycle":     "recycle [SITE/APP] [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nRestarts the app's processes (every app without SITE/APP) without losing a\nrequest, and waits until the new ones serve.",
		"stop":        "stop SITE/APP [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nStops the app's processes and keeps it down (503) until gatehouse start,\nacross reload and upgrade too (and a restart of gatehouse, after gatehouse save).",
		"start":       "start SITE/APP [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nStarts a stopped app and waits until it is ready.",
		"reload":      "reload [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nRe-reads the --config file of the running gatehouse (without one: recycles\nevery app) and exits 3 if the new configuration was rejected.",
		"reopen-logs": "reopen-logs [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nReopens the sites' access log files and starts new stdout log files for the\napps' processes, after logrotate moved them (postrotate: gatehouse reopen-logs).\nSIGWINCH to gatehouse does the same.",
		"save":        "save [--forget] [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nKeeps the apps stopped with gatehouse stop stopped, and the process counts\nof gatehouse scale, across a restart of gatehouse too: writes them to the state file beside the pid file (or the\nadmin socket), which gatehouse keeps current from then on and reads at\nstart. --forget removes the file. (Stops outlive reload and upgrade anyway.)",
		"upgrade":     "upgrade [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nAfter the gatehouse binary was replaced on disk: starts the new one with the\nrunning one's listening sockets, waits until it serves, and has the old one\ndrain its requests and exit. No connection is refused.",
	}[op]
	var f ctlFlags
	fset := newFlagSet(op, synopsis, stderr)
	f.register(fset)
	var forget *bool
	if op == "save" {
		forget = fset.Bool("forget", false, "remove the state file: a restart of gatehouse starts every app as the configuration says")
	}
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return flagErr(err)
	}
	var name string
	switch {
	case len(pos) == 1 && op != "reload" && op != "upgrade" && op != "save" && op != "reopen-logs":
		name = pos[0]
	case len(pos) == 0 && (op == "reload" || op == "recycle" || op == "upgrade" || op == "save" || op == "reopen-logs"):
	default:
		fset.Usage()
		return usageErr("%s: wrong arguments %q", op, pos)
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if c == nil { // --pid-file without a socket beside it
		if name != "" || (op != "reload" && op != "recycle") {
			return fmt.Errorf("%s needs the admin socket of the running gatehouse, and %s has none beside it", op, f.pidFile)
		}
		return signalGatehouse(f.pidFile, op, stdout)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if op == "save" {
		if err := c.Save(ctx, *forget); err != nil {
			return callErr(err)
		}
		if *forget {
			fmt.Fprintln(stdout, "state file removed")
		} else {
			fmt.Fprintln(stdout, "saved: stopped apps stay stopped across a restart of gatehouse")
		}
		return nil
	}
	if err := c.Control(ctx, op, name); err != nil {
		return callErr(err)
	}
	what := "every app"
	if name != "" {
		what = name
	}
	switch op {
	case "reload":
		fmt.Fprintln(stdout, "reloaded")
	case "upgrade":
		fmt.Fprintln(stdout, "upgraded: the new gatehouse serves; the old one is draining")
	case "reopen-logs":
		fmt.Fprintln(stdout, "logs reopened")
	default:
		fmt.Fprintf(stdout, "%s: %s done\n", what, op)
	}
	return nil
}

// signalGatehouse sends SIGHUP (reload) or SIGUSR1 (recycle) to the pid in
// pidFile, once /proc says that pid runs gatehouse: a stale pid file must
// not make it signal whatever process got the pid since.
func signalGatehouse(pidFile, op string, stdout io.Writer) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("pid file %s: %q is not a process id", pidFile, strings.TrimSpace(string(b)))
	}
	if err := isGatehouse(pid); err != nil {
		return fmt.Errorf("pid file %s: %w; not signalling it", pidFile, err)
	}
	sig, name := syscall.SIGHUP, "SIGHUP"
	if op == "recycle" {
		sig, name = syscall.SIGUSR1, "SIGUSR1"
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal gatehouse (pid %d): %w", pid, err)
	}
	fmt.Fprintf(stdout, "sent %s to gatehouse (pid %d); the outcome is in its log\n", name, pid)
	return nil
}

// cmdScale sets an app's number of processes at run time: `gatehouse
// scale SITE/APP N`.
func cmdScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ctlFlags
	fset := newFlagSet("scale", "scale SITE/APP N [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nSets the app's number of processes (processesPerApplication) at run time,\nstarting the added ones at once when the app runs and draining the removed\nones. The number holds across web.config changes, reload and upgrade (and a\nrestart of gatehouse, after gatehouse save).", stderr)
	f.register(fset)
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) != 2 {
		fset.Usage()
		return usageErr("scale takes SITE/APP and a number of processes")
	}
	n, err := strconv.Atoi(pos[1])
	if err != nil || n < 1 {
		return usageErr("scale: %q is not a number of processes (1 or more)", pos[1])
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("scale needs the admin socket of the running gatehouse, and %s has none beside it", f.pidFile)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := c.Scale(ctx, pos[0], n); err != nil {
		return callErr(err)
	}
	fmt.Fprintf(stdout, "%s: %d processes\n", pos[0], n)
	return nil
}
