package frontend_test

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRawListenerFilesNonBlocking: starting a process with the listening
// sockets, as an upgrade does (exec.Cmd.ExtraFiles calls Fd on
// ListenerFiles' duplicates), leaves the listening socket non-blocking,
// and the listener serves connection after connection. A duplicate
// shares the flag with the listener: made blocking, the raw accept loop's
// next accept4 would wait in the kernel holding its P, and the whole
// process would stop at its next garbage collection until a connection
// came.
func TestRawListenerFilesNonBlocking(t *testing.T) {
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to start")
	}
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	files, _, err := s.ListenerFiles()
	if err != nil || len(files) != 1 {
		t.Fatalf("listener files: %d, %v", len(files), err)
	}
	f := files[0]
	t.Cleanup(func() {
		// Whatever the check found: the server's stop must not wait on
		// a blocking socket.
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = syscall.SetNonblock(int(fd), true) })
		}
		f.Close()
	})
	cmd := exec.Command(trueBin)
	cmd.ExtraFiles = files
	if err := cmd.Run(); err != nil {
		t.Fatalf("start a process with the listening socket: %v", err)
	}
	if !nonBlocking(t, f) {
		t.Fatal("the listening socket is blocking after a process was started with it")
	}
	addr := s.Addrs()["http"].String()
	for range 3 {
		dialGet(t, addr).Close()
	}
	runtime.GC() // every goroutine stops: none is in a raw system call that waits
}

// nonBlocking reports whether the socket of f is in non-blocking mode.
func nonBlocking(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatalf("F_GETFL: %v %v", err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}

// linkLocal returns a link-local IPv6 address of this machine with its
// zone, or skips the test.
func linkLocal(t *testing.T) netip.Addr {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					return ip.WithZone(ifi.Name)
				}
			}
		}
	}
	t.Skip("no link-local IPv6 address")
	return netip.Addr{}
}

// TestRawTrustedProxyLinkLocal: a trusted proxy that connects from a
// link-local IPv6 address is not limited per client. The address of a
// raw connection carries its zone (the interface), and a prefix never
// contains a zoned address: the connection limits must look at the
// address without it, as they do for a connection accepted by net.
func TestRawTrustedProxyLinkLocal(t *testing.T) {
	ll := linkLocal(t)
	e := newEnv(t, "app")
	s := start(t, e.config(t, `
trustedProxies: ["fe80::/10"]
limits: {maxConnections: 1000, maxConnectionsPerClient: 1}
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: "::", port: 0}]
    applications: [{path: /, dir: app}]
`), newOpener())
	addr := netip.AddrPortFrom(ll, uint16(s.Addrs()["http"].(*net.TCPAddr).Port)).String()
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Skipf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		if code := getOn(t, c); code != 200 {
			t.Fatalf("connection %d from the trusted proxy %s: %d, want 200 (not limited per client)", i+1, ll, code)
		}
	}
}
