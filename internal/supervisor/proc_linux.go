//go:build linux

package supervisor

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts the child in its own process group, so the whole tree
// can be signalled at once (the Linux stand-in for ANCM's job object), and
// has the kernel kill it if Gatehouse dies. Pdeathsig fires when the thread
// that forked the child exits; the Go runtime only ends threads of goroutines
// that exit locked to them, which the supervisor never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitExited blocks until the child pid has exited, without reaping it: the
// zombie keeps its pid and process-group id reserved while the rest of the
// group is killed. It waits on a pidfd in the runtime's network poller, so
// a waiting child costs no thread; where pidfds are not available (Linux
// before 5.10), one thread blocks in waitid per child.
func waitExited(pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return waitExitedBlocking(pid)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return waitExitedBlocking(pid)
	}
	var werr error
	// The pidfd turns readable when the process exits; Read calls the
	// function again each time it does, until it reports done.
	if err := rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo // Signo stays 0 while the process runs
		for werr = unix.EINTR; werr == unix.EINTR; {
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		}
		return werr != nil || info.Signo == int32(unix.SIGCHLD)
	}); err != nil {
		return err
	}
	return werr
}

// waitExitedBlocking is waitExited with one thread blocked in waitid.
func waitExitedBlocking(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// exitStatus returns the exit code, or the signal name if a signal ended it.
func exitStatus(ps *os.ProcessState) (int, string) {
	if ps == nil {
		return -1, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, unix.SignalName(ws.Signal())
	}
	return ps.ExitCode(), ""
}

// listenerInGroup reports whether a socket listening on TCP port belongs to
// a process in process group pgid, as ANCM checks that the listener's PID is
// in the app's job: a connect probe alone would take another program that
// grabbed the port first for the app. If /proc cannot tell, it says true.
// The common case is checked first and cheaply: the socket that a connect
// to 127.0.0.1:port reaches is one of the app's own (pid pgid). Otherwise
// every listener on the port is looked up, and every member of the group.
func listenerInGroup(port, pgid int) bool {
	if inode, err := loopbackListener(port); err == nil && inode != "" {
		if held, _ := fdsHold(pgid, map[string]bool{inode: true}); held {
			return true
		}
	}
	inodes, ok := listeningInodes(port)
	if !ok {
		return true
	}
	if len(inodes) == 0 {
		return false
	}
	if held, _ := fdsHold(pgid, inodes); held {
		return true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	members, readFds := 0, 0
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !samePgid(pid, pgid) {
			continue
		}
		members++
		held, readable := fdsHold(pid, inodes)
		if held {
			return true
		}
		if readable {
			readFds++
		}
	}
	// Members whose fds cannot be read (another user, hardened /proc): we
	// cannot tell, so trust the connect.
	return members > 0 && readFds < members
}

// fdsHold reports whether process pid has one of inodes ("socket:[N]") open,
// and whether its fds could be read at all. The links are read relative to
// the open fd folder, unsorted: a whole path per fd has the kernel find the
// process again for each (~3x the time, on the cold start's path).
func fdsHold(pid int, inodes map[string]bool) (held, readable bool) {
	dir, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return false, false
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return false, false
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return false, false
	}
	var buf [64]byte // "socket:[4294967295]" and any other link we compare
	err = rc.Control(func(dfd uintptr) {
		for _, name := range names {
			n, err := unix.Readlinkat(int(dfd), name, buf[:])
			if err == nil && n < len(buf) && inodes[string(buf[:n])] {
				held = true
				return
			}
		}
	})
	return held, err == nil
}

// listeningInodes returns the inodes, as "socket:[N]", of the TCP sockets
// listening on port; ok is false if neither sock_diag nor /proc/net could
// tell. sock_diag comes first: it walks only the listening sockets, where
// reading /proc/net/tcp walks every socket of the host and took ~5 ms per
// file on a busy machine (most of a cold start's overhead).
func listeningInodes(port int) (map[string]bool, bool) {
	if inodes, err := diagListeners(port); err == nil {
		return inodes, true
	}
	inodes := map[string]bool{}
	readable := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		readable = true
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	return inodes, readable
}

// v6LoopbackOnly reports whether a process of group pgid listens on
// [::1]:port (or [::]:port with IPV6_V6ONLY) and nothing listens on that
// port over IPv4: an app that bound "localhost" and got ::1, which
// Gatehouse, connecting to 127.0.0.1, cannot reach.
func v6LoopbackOnly(port, pgid int) bool {
	b, err := os.ReadFile("/proc/net/tcp6")
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		fs := strings.Fields(line)
		if len(fs) < 10 || fs[3] != "0A" {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(fs[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
			continue
		}
		// ::1 as /proc prints it (four host-order words).
		if hexAddr == "00000000000000000000000001000000" {
			inodes["socket:["+fs[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return false
	}
	if v4, err := os.ReadFile("/proc/net/tcp"); err == nil {
		for _, line := range strings.Split(string(v4), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			if _, hexPort, ok := strings.Cut(fs[1], ":"); ok {
				if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
					return false
				}
			}
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !samePgid(pid, pgid) {
			continue
		}
		dir := "/proc/" + e.Name() + "/fd"
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if l, err := os.Readlink(dir + "/" + fd.Name()); err == nil && inodes[l] {
				return true
			}
		}
	}
	return false
}

func samePgid(pid, pgid int) bool {
	g, err := unix.Getpgid(pid)
	return err == nil && g == pgid
}

// portFree reports whether a socket can listen on 127.0.0.1:port right
// now, set up as the Go and .NET runtimes set up theirs (SO_REUSEADDR). It
// uses raw system calls: a net.Listener also registers with the runtime's
// poller, twice the time on the cold start's path.
func portFree(port int) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return false
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return false
	}
	return unix.Listen(fd, 1) == nil
}
