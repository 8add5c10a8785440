package frontend

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

func TestSameListenAddr(t *testing.T) {
	t.Parallel()
	tcp := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, tc := range []struct {
		name    string
		address string
		port    int
		addr    net.Addr
		want    bool
	}{
		{"any matches systemd's [::]", "", 80, tcp("::", 80), true},
		{"any matches 0.0.0.0", "*", 80, tcp("0.0.0.0", 80), true},
		{"other port", "", 80, tcp("::", 8080), false},
		{"any does not match one address", "", 80, tcp("127.0.0.1", 80), false},
		{"same address", "127.0.0.1", 8080, tcp("127.0.0.1", 8080), true},
		{"mapped v4", "127.0.0.1", 8080, tcp("::ffff:127.0.0.1", 8080), true},
		{"other address", "127.0.0.1", 8080, tcp("127.0.0.2", 8080), false},
		{"port 0 never", "127.0.0.1", 0, tcp("127.0.0.1", 0), false},
		{"not tcp", "", 80, &net.UnixAddr{Name: "x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &siteconfig.Binding{Scheme: "http", Address: tc.address, Port: tc.port}
			if got := sameListenAddr(b, tc.addr); got != tc.want {
				t.Errorf("sameListenAddr(%q:%d, %v) = %v, want %v", tc.address, tc.port, tc.addr, got, tc.want)
			}
		})
	}
}

func TestBindHint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		port int
		want string
	}{
		{fmt.Errorf("listen: %w", syscall.EACCES), 80, "cap_net_bind_service"},
		{fmt.Errorf("listen: %w", syscall.EACCES), 8080, ""},
		{fmt.Errorf("listen: %w", syscall.EADDRINUSE), 8080, "sport = :8080"},
		{fmt.Errorf("listen: %w", syscall.EADDRNOTAVAIL), 8080, "no interface"},
	} {
		got := bindHint(tc.err, tc.port)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("bindHint(%v, %d) = %q, want one containing %q", tc.err, tc.port, got, tc.want)
		}
	}
}
