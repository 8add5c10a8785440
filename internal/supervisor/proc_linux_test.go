//go:build linux

package supervisor

import (
	"maps"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
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
