//go:build linux

package supervisor

import (
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestListenerInGroup checks both ways of finding a port's listening
// sockets against the socket's own fd, and the group check built on them.
func TestListenerInGroup(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}

	diag, err := diagListeners(port)
	if err != nil {
		t.Fatalf("sock_diag: %v", err)
	}
	if !maps.Equal(diag, map[string]bool{want: true}) {
		t.Errorf("sock_diag found %v, want %s", diag, want)
	}
	inodes, ok := listeningInodes(port)
	if !ok || !maps.Equal(inodes, diag) {
		t.Errorf("listeningInodes = %v, %v; want %v", inodes, ok, diag)
	}

	if !listenerInGroup(port, syscall.Getpgrp()) {
		t.Error("our own listener is not in our process group")
	}
	// pid 1 leads a group we are not in (the supervisor's children have
	// their own groups, and so do tests' helpers).
	if syscall.Getpgrp() != 1 && listenerInGroup(port, 1) {
		t.Error("our listener counted as group 1's")
	}
	ln2, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln2.Addr().(*net.TCPAddr).Port
	ln2.Close()
	if listenerInGroup(free, syscall.Getpgrp()) {
		t.Errorf("port %d has no listener but counted as ours", free)
	}
}

// waitExited returns once each child has exited and leaves it a zombie
// (not reaped), for many children at once, and a waiting child costs no
// thread. Not parallel: other tests' threads would blur the count.
func TestWaitExitedLeavesZombie(t *testing.T) {
	const n = 50
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = exec.Command("sleep", "60")
		cmds[i].SysProcAttr = sysProcAttr()
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	before := threads(t)
	errs := make(chan error, n)
	for _, c := range cmds {
		go func() { errs <- waitExited(c.Process.Pid) }() // ends once c is killed below
	}
	// With a thread blocked in waitid per child, n more threads show
	// within milliseconds; the runtime keeps them once made.
	grown := 0
	for i := 0; i < 50 && grown < n/2; i++ {
		grown = max(grown, threads(t)-before)
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range cmds {
		c.Process.Kill()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("waitExited: %v", err)
		}
	}
	for _, c := range cmds {
		if st := procStat(c.Process.Pid); st.state != 'Z' {
			t.Errorf("pid %d in state %q after waitExited, want a zombie", c.Process.Pid, st.state)
		}
		c.Wait()
	}
	if grown >= n/2 {
		t.Errorf("waiting for %d children took %d more threads, want no thread per child", n, grown)
	}
}

// threads returns how many threads this process has.
func threads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestLoopbackListener checks the one-socket lookup against the socket's
// own fd: it finds what a connect to 127.0.0.1:port reaches (an IPv4
// socket there or on any address, an IPv6 one that accepts IPv4), and
// nothing for a port with no listener or one only on [::1] or 127.0.0.2.
func TestLoopbackListener(t *testing.T) {
	t.Parallel()
	inode := func(t *testing.T, ln net.Listener) string {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, c := range []struct {
		network, addr string
		reached       bool
	}{
		{"tcp4", "127.0.0.1:0", true},
		{"tcp4", "0.0.0.0:0", true},
		{"tcp", "[::]:0", true},
		{"tcp6", "[::1]:0", false},
		{"tcp4", "127.0.0.2:0", false},
	} {
		t.Run(c.network+" "+c.addr, func(t *testing.T) {
			ln, err := net.Listen(c.network, c.addr)
			if err != nil {
				t.Skipf("cannot listen here: %v", err)
			}
			defer ln.Close()
			want := ""
			if c.reached {
				want = inode(t, ln)
			}
			got, err := loopbackListener(ln.Addr().(*net.TCPAddr).Port)
			if err != nil || got != want {
				t.Errorf("loopbackListener = %q, %v; want %q", got, err, want)
			}
		})
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if got, err := loopbackListener(free); err != nil || got != "" {
		t.Errorf("no listener: loopbackListener = %q, %v; want \"\"", got, err)
	}
}

// TestFdsHold checks the fd scan against a socket we hold.
func TestFdsHold(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	inode, err := loopbackListener(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || inode == "" {
		t.Fatalf("loopbackListener = %q, %v", inode, err)
	}
	if held, readable := fdsHold(os.Getpid(), map[string]bool{inode: true}); !held || !readable {
		t.Errorf("our own listener: held %v, readable %v; want both", held, readable)
	}
	if held, readable := fdsHold(os.Getpid(), map[string]bool{"socket:[1]": true}); held || !readable {
		t.Errorf("a socket we do not hold: held %v, readable %v; want false, true", held, readable)
	}
	if held, readable := fdsHold(1<<30, map[string]bool{inode: true}); held || readable {
		t.Errorf("no such process: held %v, readable %v; want false, false", held, readable)
	}
}

// TestPortFree checks the free-port test against listeners that hold the
// port for 127.0.0.1.
func TestPortFree(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp4", "0.0.0.0:0"},
		{"tcp", "[::]:0"},
	} {
		ln, err := net.Listen(c.network, c.addr)
		if err != nil {
			t.Logf("cannot listen on %s: %v", c.addr, err)
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if portFree(port) {
			t.Errorf("port %d, held by a listener on %s, counted as free", port, c.addr)
		}
		ln.Close()
		if !portFree(port) {
			t.Errorf("port %d counted as taken once its listener on %s closed", port, c.addr)
		}
	}
}
