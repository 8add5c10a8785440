package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace made for one test, joined to this machine
// by a veth pair: the machine's end has HostIP, the namespace's end PeerIP.
// A connection dialled from inside (Dial) reaches the machine from an
// address that is not the machine's: an honest "remote" client.
type netns struct {
	name           string
	HostIP, PeerIP string
}

// newNetns makes the namespace and removes it when the test ends. It skips
// the test when namespaces cannot be made (not root, no ip command).
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	id := n.Int64()
	ns := &netns{
		name:   fmt.Sprintf("gh-test-%d", id),
		HostIP: fmt.Sprintf("10.%d.%d.1", 200+id>>14, id>>6&0xff),
	}
	ns.PeerIP = strings.TrimSuffix(ns.HostIP, ".1") + ".2"
	hostIf, peerIf := fmt.Sprintf("ghh%d", id), fmt.Sprintf("ghp%d", id)
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", ns.name); err != nil {
		t.Skipf("cannot make a network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = run("link", "del", hostIf) // also removes the peer end
		if err := run("netns", "del", ns.name); err != nil {
			t.Error(err)
		}
	})
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", peerIf},
		{"link", "set", peerIf, "netns", ns.name},
		{"addr", "add", ns.HostIP + "/24", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns.name, "addr", "add", ns.PeerIP + "/24", "dev", peerIf},
		{"-n", ns.name, "link", "set", peerIf, "up"},
		{"-n", ns.name, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// Dial opens a TCP connection to addr from inside the namespace.
func (ns *netns) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	// A goroutine of its own, locked to its thread: the thread enters the
	// namespace for the socket() call and is dropped afterwards if it
	// cannot get back.
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer back.Close()
		target, err := os.Open("/var/run/netns/" + ns.name)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// Client returns an HTTP client whose connections come from the namespace.
func (ns *netns) Client(t *testing.T) *http.Client {
	tr := &http.Transport{DialContext: ns.Dial}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
