package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// systemdEnv is what systemd (or an upgrading Gatehouse) handed this
// process: the notify socket and listening sockets. takeSystemdEnv reads
// it and removes it from the environment, so the apps never see it (an app
// that found NOTIFY_SOCKET would talk to systemd about Gatehouse's unit).
type systemdEnv struct {
	notify  *notifier
	sockets map[string][]net.Listener // by LISTEN_FDNAMES name ("LISTEN_FD_3" when unnamed)
	// From an upgrading Gatehouse (upgrade.go): the admin endpoints'
	// sockets by name, and where to say READY=1.
	adminSockets map[string]net.Listener
	upgradeReady *notifier
}

func takeSystemdEnv(log *slog.Logger) systemdEnv {
	var env systemdEnv
	if addr := os.Getenv("NOTIFY_SOCKET"); addr != "" {
		env.notify = &notifier{addr: addr, log: log}
	}
	os.Unsetenv("NOTIFY_SOCKET")
	os.Unsetenv("WATCHDOG_USEC")
	os.Unsetenv("WATCHDOG_PID")
	// Checks LISTEN_PID and unsets LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.
	lns, _ := activation.ListenersWithNames() // it never fails; non-TCP fds are skipped
	env.sockets = lns
	up, adminFile, ready := inheritedFromUpgrade(log)
	env.adminSockets = map[string]net.Listener{}
	for name, l := range up {
		if name == "admin-addr" || name == "metrics" {
			env.adminSockets[name] = l[0]
			continue
		}
		env.sockets[name] = append(env.sockets[name], l...)
	}
	if adminFile != nil {
		if ln, err := net.FileListener(adminFile); err == nil {
			env.adminSockets["admin"] = ln
		} else {
			log.Warn("upgrade: the inherited admin socket is not a listener; binding it anew", "err", err)
		}
		adminFile.Close()
	}
	if ready != "" {
		env.upgradeReady = &notifier{addr: ready, log: log}
	}
	return env
}

// notifier sends sd_notify(3) messages to systemd: a datagram of
// newline-separated KEY=VALUE lines to the unix socket NOTIFY_SOCKET names
// (a leading '@' is an abstract socket, which Go dials as given). A nil
// notifier sends nothing.
type notifier struct {
	addr string
	log  *slog.Logger
}

// send sends the lines; a failure is logged at debug, as systemd may be gone.
func (n *notifier) send(lines ...string) {
	if n == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, err = c.Write([]byte(strings.Join(lines, "\n") + "\n"))
		c.Close()
	}
	if err != nil {
		n.log.Debug("sd_notify", "socket", n.addr, "err", err)
	}
}

// ready says Gatehouse serves (again, after a reload).
func (n *notifier) ready(status string) {
	n.send("READY=1", "STATUS="+status, "MAINPID="+strconv.Itoa(os.Getpid()))
}

// reloading says a reload started (Type=notify-reload wants the monotonic
// time with it).
func (n *notifier) reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Sec*1_000_000 + ts.Nsec/1000
	n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10), "STATUS=reloading the configuration")
}

// stopping says shutdown began.
func (n *notifier) stopping() {
	n.send("STOPPING=1", "STATUS=stopping: draining connections, then stopping the apps")
}

// servingStatus is the STATUS= line while serving.
func servingStatus(ctl *controller) string {
	st := ctl.Status()
	var addrs []string
	for _, l := range st.Listeners {
		addrs = append(addrs, l.Scheme+"://"+l.Address)
	}
	return fmt.Sprintf("serving %d app(s) on %s", len(st.Apps), strings.Join(addrs, " "))
}
