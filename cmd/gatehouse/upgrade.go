package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/frontend"
)

// Environment of a Gatehouse started by an upgrade. inheritFDs counts the
// sockets passed from fd 3 on, inheritNames names them (listener keys, and
// "admin" for the admin socket), upgradeReady is the unixgram socket where
// the new Gatehouse says READY=1 once it listens.
const (
	inheritFDs   = "GATEHOUSE_INHERIT_FDS"
	inheritNames = "GATEHOUSE_INHERIT_NAMES"
	upgradeReady = "GATEHOUSE_UPGRADE_READY"
)

// upgradeReadyTimeout bounds how long the old Gatehouse waits for the new
// one to listen (it opens its apps first, which is quick: they start on
// demand or in the background).
const upgradeReadyTimeout = time.Minute

// upgrader hands the listening sockets over to a new Gatehouse binary and,
// once it serves, has this one stop (draining its requests and stopping its
// apps). The executable is the path this process was started from, which
// the new binary has replaced on disk.
type upgrader struct {
	exe     string
	args    []string
	srv     *frontend.Server
	notify  *notifier                     // systemd's, told the new MAINPID; nil outside systemd
	admin   func() ([]*os.File, []string) // duplicates the admin endpoints' sockets, with their names
	log     *slog.Logger
	handoff func() // called once the new Gatehouse serves: this one stops
	// env, if set, returns environment entries for the new Gatehouse (the
	// operator's state).
	env func() []string

	mu   sync.Mutex // serialises upgrades and protects done
	done bool       // handed over: do not remove the pid file and admin socket
}

// restoreNonblock puts the sockets back in non-blocking mode. Starting a
// process with them (exec.Cmd.ExtraFiles calls Fd) made them blocking,
// and a duplicate shares that flag with the listener it was made from: a
// listener left blocking would park its accept loop in a system call
// that closing the listener does not end, so this Gatehouse could not
// stop after a failed upgrade.
func restoreNonblock(files []*os.File) {
	for _, f := range files {
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.SetNonblock(int(fd), true) }) // best effort
		}
	}
}

// handedOver reports whether a new Gatehouse took over.
func (u *upgrader) handedOver() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.done
}

// Upgrade starts the new Gatehouse with the sockets and waits until it
// says it serves; then it has this one stop and returns the new pid. If the
// new one exits or does not become ready, it is stopped and this one keeps
// serving.
func (u *upgrader) Upgrade(ctx context.Context) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, errors.New("upgrade: already handed over to a new gatehouse")
	}
	files, names, err := u.srv.ListenerFiles()
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if u.admin != nil {
		af, an := u.admin()
		files, names = append(files, af...), append(names, an...)
	}
	dir, err := os.MkdirTemp("", "gatehouse-upgrade-")
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "ready.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	defer conn.Close()

	cmd := exec.Command(u.exe, u.args...)
	cmd.Env = append(os.Environ(),
		inheritFDs+"="+strconv.Itoa(len(files)),
		inheritNames+"="+strings.Join(names, "\x1f"),
		upgradeReady+"="+sock)
	if u.env != nil {
		cmd.Env = append(cmd.Env, u.env()...)
	}
	if u.notify != nil {
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+u.notify.addr)
	}
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Its own process group: the old Gatehouse's orphan reaper leaves it
	// alone, and it outlives this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	restoreNonblock(files)
	if err != nil {
		return 0, fmt.Errorf("upgrade: start %s: %w", u.exe, err)
	}
	pid := cmd.Process.Pid
	u.log.Info("upgrade: started the new gatehouse with the listening sockets", "pid", pid, "exe", u.exe, "sockets", len(files))

	exited := make(chan error, 1)
	watch, err := watchExit(pid)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	stopWait := watch.stop
	defer stopWait()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// Only a failed start is reaped here; a new Gatehouse that serves
		// outlives this one.
		if watch.wait() {
			var info syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &info, 0, nil)
			exited <- fmt.Errorf("the new gatehouse exited (%v) before it served", info)
		}
	})
	ready := make(chan error, 1)
	wg.Go(func() { ready <- awaitReady(conn, upgradeReadyTimeout) })

	fail := func(err error) (int, error) {
		stopWait()
		conn.Close() // ends awaitReady
		_ = syscall.Kill(pid, syscall.SIGTERM)
		u.log.Error("upgrade failed; this gatehouse keeps serving", "pid", pid, "err", err)
		return 0, fmt.Errorf("upgrade: %w; the running gatehouse keeps serving", err)
	}
	select {
	case err := <-exited:
		return fail(err)
	case <-ctx.Done():
		return fail(ctx.Err())
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
	}
	stopWait()
	conn.Close()
	u.done = true
	u.notify.send("MAINPID="+strconv.Itoa(pid), "READY=1", "STATUS=upgraded: new gatehouse pid "+strconv.Itoa(pid))
	u.log.Info("upgrade: the new gatehouse serves; this one stops accepting, drains and exits", "new_pid", pid)
	u.handoff()
	return pid, nil
}

// exitWatch waits for a process to exit (its pidfd becomes readable) or
// for stop, without polling.
type exitWatch struct {
	pidfd    int
	r, w     *os.File // stop closes w, which wakes the poll on r
	stopOnce sync.Once
}

func watchExit(pid int) (*exitWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of the new gatehouse: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &exitWatch{pidfd: fd, r: r, w: w}, nil
}

// wait blocks until the process exited (true) or stop was called (false),
// then releases the descriptors.
func (e *exitWatch) wait() bool {
	defer func() { unix.Close(e.pidfd); e.r.Close() }()
	fds := []unix.PollFd{{Fd: int32(e.pidfd), Events: unix.POLLIN}, {Fd: int32(e.r.Fd()), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return err == nil && fds[0].Revents != 0 && fds[1].Revents == 0
		}
	}
}

// stop ends wait. Safe to call more than once.
func (e *exitWatch) stop() { e.stopOnce.Do(func() { e.w.Close() }) }

// awaitReady reads datagrams on conn until one holds READY=1, or d passes.
func awaitReady(conn *net.UnixConn, d time.Duration) error {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			return fmt.Errorf("the new gatehouse did not say it serves within %s: %w", d, err)
		}
		for line := range bytes.SplitSeq(buf[:n], []byte("\n")) {
			if string(bytes.TrimSpace(line)) == "READY=1" {
				return nil
			}
		}
	}
}

// inheritedFromUpgrade returns the sockets an upgrading Gatehouse passed
// (GATEHOUSE_INHERIT_FDS), by name, and removes the variables. The admin
// socket comes as a *os.File under "admin"; the rest as listeners. A
// socket that is not a listener is logged and left out.
func inheritedFromUpgrade(log *slog.Logger) (map[string][]net.Listener, *os.File, string) {
	n, _ := strconv.Atoi(os.Getenv(inheritFDs))
	names := strings.Split(os.Getenv(inheritNames), "\x1f")
	ready := os.Getenv(upgradeReady)
	os.Unsetenv(inheritFDs)
	os.Unsetenv(inheritNames)
	os.Unsetenv(upgradeReady)
	lns := map[string][]net.Listener{}
	var adminFile *os.File
	for i := range n {
		fd := 3 + i
		syscall.CloseOnExec(fd)
		name := "fd" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		f := os.NewFile(uintptr(fd), name)
		if name == "admin" {
			adminFile = f
			continue
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			log.Warn("upgrade: an inherited socket is not a listener; left out", "name", name, "fd", fd, "err", err)
			continue
		}
		lns[name] = append(lns[name], ln)
	}
	return lns, adminFile, ready
}
