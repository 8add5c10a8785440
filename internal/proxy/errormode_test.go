package proxy

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// machineAddr returns a non-loopback address of one of this machine's
// interfaces, or "" if it has none.
func machineAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// TestErrorModeDetails checks who sees the 502.5 and 503 details for each
// errorMode: DetailedLocalOnly (the default) shows them only to requests
// from the machine itself.
func TestErrorModeDetails(t *testing.T) {
	t.Parallel()
	const secret = "ConnectionString=Password=hunter2"
	startErr := &upstream.StartError{Command: "/srv/app/run", Reason: "process exited during startup", ExitCode: 3, Output: secret}
	rapid := &upstream.RapidFailError{Limit: 10, LastExit: "pid 4242 exited with code 3"}
	own := machineAddr(t)
	type client struct {
		name, remote string
		clientIP     string // set by a trusted proxy; "" = none
		local        bool
	}
	clients := []client{
		{"loopback", "127.0.0.1:5000", "", true},
		{"other loopback", "127.0.0.2:5000", "", true},
		{"ipv6 loopback", "[::1]:5000", "", true},
		{"mapped loopback", "[::ffff:127.0.0.1]:5000", "", true},
		{"remote", "203.0.113.9:5000", "", false},
		{"remote ipv6", "[2001:db8::9]:5000", "", false},
		{"remote via a local proxy", "127.0.0.1:5000", "203.0.113.9", false},
		{"local via a local proxy", "127.0.0.1:5000", "127.0.0.1", true},
	}
	if own != "" {
		clients = append(clients, client{"own address " + own, net.JoinHostPort(own, "5000"), "", true})
	}
	for _, mode := range []config.ErrorMode{"", config.ErrorModeDetailedLocalOnly, config.ErrorModeDetailed, config.ErrorModeCustom} {
		for _, c := range clients {
			want := mode.ShowDetails(c.local)
			for _, err := range []error{startErr, rapid} {
				h := &Handler{ErrorMode: mode, Backend: &fakeBackend{acquire: func(int) (*upstream.Lease, error) { return nil, err }}}
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/", nil)
				req.RemoteAddr = c.remote
				fh := forwardHandler{h: h}
				if c.clientIP != "" {
					fh.describe = func(pr *pipeline.Request) { pr.ClientIP = netip.MustParseAddr(c.clientIP) }
				}
				fh.ServeHTTP(rec, req)
				body := rec.Body.String()
				if !strings.Contains(body, "HTTP Error 50") {
					t.Errorf("mode %q, %s, %T: not an error page: %d %q", mode, c.name, err, rec.Code, body)
				}
				for _, detail := range []string{secret, "/srv/app/run", "code 3", "4242"} {
					if err == error(rapid) && detail != "4242" || err == error(startErr) && detail == "4242" {
						continue
					}
					if got := strings.Contains(body, detail); got != want {
						t.Errorf("mode %q, %s, %T: page shows %q = %v, want %v", mode, c.name, err, detail, got, want)
					}
				}
			}
		}
	}
}
