// Command gatehouse puts a web app behind a front door that also keeps it
// alive: the ASP.NET Core Module's out-of-process hosting, for Linux.
//
//	gatehouse serve [flags] DIR          serve the app whose web.config is in DIR
//	gatehouse serve --config FILE        serve the sites and apps listed in FILE
//	gatehouse run [flags] -- CMD ARGS…   serve CMD, which listens on $ASPNETCORE_PORT
//	gatehouse check DIR|FILE             validate a web.config (or site config) and print the settings
//	gatehouse status [--json]            show the listeners, apps and processes of a running gatehouse
//	gatehouse logs [SITE/APP] [-f]       an app's output and gatehouse's lines about it
//	gatehouse reload                     re-read the configuration of a running gatehouse
//	gatehouse recycle [SITE/APP]         restart an app (or every app) without losing a request
//	gatehouse restart [SITE/APP]         the same as recycle
//	gatehouse scale SITE/APP N           run N processes of the app
//	gatehouse stop|start SITE/APP        stop an app and keep it down, or start it again
//	gatehouse save [--forget]            keep the stops across a restart of gatehouse (state file)
//	gatehouse reopen-logs                reopen the access and stdout logs (logrotate; or SIGWINCH)
//	gatehouse upgrade                    hand the sockets to a new binary without refusing a connection
//	gatehouse version                    print the version
//
// Exit codes: 0 success or clean stop; 1 runtime failure (a port can't be
// bound, …); 2 usage error; 3 invalid configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// Exit codes that scripts can rely on.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitConfig = 3
)

func main() {
	// The socket-activation shim re-executes this binary in front of the app
	// to set LISTEN_PID; it only returns (true) when it could not exec the app.
	if supervisor.ShimMain() {
		os.Exit(127)
	}
	// The keeper is this binary re-executed to kill the apps' process groups
	// if gatehouse dies; it returns true once gatehouse is gone.
	if supervisor.KeeperMain() {
		os.Exit(0)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

func configErr(err error) error { return &exitError{exitConfig, err} }

const usage = `Usage:
  gatehouse serve [flags] DIR          serve the app whose web.config is in DIR
  gatehouse serve --config FILE        serve the sites and apps listed in FILE
  gatehouse run [flags] -- CMD ARGS…   serve CMD (no web.config), which listens on $ASPNETCORE_PORT
  gatehouse check DIR|FILE             validate a web.config or site config, print the effective settings
  gatehouse status [--json]            show the listeners, apps and processes of a running gatehouse
  gatehouse logs [SITE/APP] [-f]       an app's output and gatehouse's lines about it (-f: follow)
  gatehouse reload                     re-read the configuration of a running gatehouse, wait for the outcome
  gatehouse recycle [SITE/APP]         restart an app (or every app) without losing a request
  gatehouse restart [SITE/APP]         the same as recycle
  gatehouse scale SITE/APP N           run N processes of the app (processesPerApplication at run time)
  gatehouse stop SITE/APP              stop an app and keep it down (503) until start
  gatehouse start SITE/APP             start a stopped app and wait until it is ready
  gatehouse save [--forget]            keep stops and scales across a restart of gatehouse too
                                       (state file beside the pid file; they outlive reload and upgrade anyway)
  gatehouse reopen-logs                reopen the access and stdout logs after logrotate (or SIGWINCH)
  gatehouse upgrade                    hand the listening sockets to a new binary; the old one drains and exits
  gatehouse version                    print the version

The control commands find the running gatehouse with no flag when it was
started without --pid-file and --admin: its admin socket gatehouse.sock is
in the first of $RUNTIME_DIRECTORY (systemd), /run/gatehouse (the system
service), $XDG_RUNTIME_DIR/gatehouse (a user), $TMPDIR/gatehouse-UID where a
gatehouse answers. Otherwise pass --pid-file FILE (its admin socket is beside
it) or --admin SOCKET, or call its loopback TCP address with
--admin-addr ADDR: that needs the token in the token file beside the socket
(gatehouse.sock -> gatehouse.token, mode 0640: Gatehouse's group may read it;
--admin-token FILE names another), which they read themselves. On the TCP
address /healthz, /readyz and /metrics need no token.

Run "gatehouse COMMAND --help" for the flags of a command.
Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid configuration.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr)
	case "reload", "recycle", "stop", "start", "upgrade", "save", "reopen-logs":
		err = cmdControl(ctx, args[0], args[1:], stdout, stderr)
	case "scale":
		err = cmdScale(ctx, args[1:], stdout, stderr)
	case "logs":
		err = cmdLogs(ctx, args[1:], stdout, stderr)
	case "restart": // pm2's and systemctl's word for it
		err = cmdControl(ctx, "recycle", args[1:], stdout, stderr)
	case "version", "--version", "-version":
		err = cmdVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "gatehouse: %v\n", err)
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return exitFailed
}
