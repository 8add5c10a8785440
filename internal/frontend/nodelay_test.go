package frontend_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/frontend"
)

// serverSideNoDelay returns TCP_NODELAY of this process's socket connected
// from c (the Server's side of c, found among the open descriptors).
func serverSideNoDelay(t *testing.T, c net.Conn) int {
	t.Helper()
	want := c.LocalAddr().(*net.TCPAddr).AddrPort()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getpeername(fd)
		if err != nil {
			continue
		}
		in4, ok := sa.(*unix.SockaddrInet4)
		if !ok || in4.Port != int(want.Port()) || in4.Addr != want.Addr().As4() {
			continue
		}
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Fatalf("no socket of this process is connected from %v", want)
	return 0
}

// TestNoDelayOnQueuedConnections: a connection that waited in the queue
// of a listening socket the Server did not open itself (systemd's, an
// upgraded Gatehouse's, Prebind's) has TCP_NODELAY once the Server serves
// it, as every other connection does: without it, a response written in
// two pieces waits for the client's delayed ACK.
func TestNoDelayOnQueuedConnections(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"inherited", "prebound"} {
		t.Run(how, func(t *testing.T) {
			cfg, addr := prebindConfig(t)
			var opts []frontend.Option
			var ln net.Listener
			if how == "prebound" {
				pre := frontend.Prebind(cfg)
				defer pre.Close()
				opts = append(opts, frontend.WithPrebound(pre))
			} else {
				var err error
				// systemd's socket: bound and listening before Gatehouse runs.
				if ln, err = net.Listen("tcp", addr); err != nil {
					t.Fatal(err)
				}
			}
			// The handshake completes in the kernel: the connection waits
			// in the listening socket's queue.
			c, err := dialListener(addr)
			if err != nil {
				t.Fatalf("connect before the Server runs: %v", err)
			}
			defer c.Close()
			srv, err := frontend.New(cfg, newOpener().open, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
			if err != nil {
				t.Fatal(err)
			}
			if ln != nil {
				srv.Inherit("systemd", ln)
			}
			runServer(t, srv)
			if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if v := serverSideNoDelay(t, c); v == 0 {
				t.Errorf("the Server's socket of a connection queued before it ran has TCP_NODELAY off")
			}
			// And one that comes after.
			c2, err := dialListener(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			fmt.Fprintf(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c2), nil); err != nil {
				t.Fatalf("read the second answer: %v", err)
			}
			if v := serverSideNoDelay(t, c2); v == 0 {
				t.Errorf("the Server's socket of a later connection has TCP_NODELAY off")
			}
		})
	}
}
