package supervisor

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Port ranges from ANCM V2: random ports come from 10000–48000; a port fixed
// with ASPNETCORE_PORT must be in 1025–48000.
const (
	minRandomPort = 10000
	minFixedPort  = 1025
	maxPort       = 48000
	portTries     = 10 // ANCM tries 10 random ports before giving up
)

// Variables set per process; entries of these names in Spec.Env are replaced.
var perProcessVars = []string{"ASPNETCORE_PORT", "HTTP_PLATFORM_PORT", "PORT", "ASPNETCORE_TOKEN",
	"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", shimEnv}

// childEnv returns base with the per-process variables set. Names match
// without regard to case, as web.config names do in ANCM V2.
func childEnv(base []string, port int, token string, extra []string) []string {
	drop := make(map[string]bool, len(perProcessVars))
	for _, k := range perProcessVars {
		drop[k] = true
	}
	env := make([]string, 0, len(base)+4+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[strings.ToUpper(k)] {
			env = append(env, kv)
		}
	}
	p := strconv.Itoa(port)
	env = append(env, "ASPNETCORE_PORT="+p, "HTTP_PLATFORM_PORT="+p, "PORT="+p, "ASPNETCORE_TOKEN="+token)
	return append(env, extra...)
}

// portFromEnv returns the port fixed by a non-empty ASPNETCORE_PORT in env.
func portFromEnv(env []string) (port int, fixed bool, err error) {
	v, _ := config.EnvLookup(env)("ASPNETCORE_PORT")
	if v = strings.TrimSpace(v); v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minFixedPort || n > maxPort {
		return 0, false, fmt.Errorf("ASPNETCORE_PORT %q: must be a port number in %d–%d", v, minFixedPort, maxPort)
	}
	return n, true, nil
}

// tokenFromEnv returns a non-empty ASPNETCORE_TOKEN from env, or "".
func tokenFromEnv(env []string) string {
	v, _ := config.EnvLookup(env)("ASPNETCORE_TOKEN")
	return v
}

// newToken returns a random token in lowercase GUID form, as ANCM's
// UuidCreate + UuidToStringA produce (a version-4 UUID).
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// pickPort returns a random free port in 10000–48000, as ANCM V2 does,
// checking that nothing listens on it; after 10 taken ports it lets the
// kernel choose.
func pickPort() (int, error) {
	for range portTries {
		port := minRandomPort + mrand.IntN(maxPort-minRandomPort+1)
		if portFree(port) {
			return port, nil
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether 127.0.0.1:port can be bound right now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// bindLoopback binds 127.0.0.1:port (0 = any) for socket activation and
// returns the socket as a file to hand to the child, and the port.
func bindLoopback(port int) (*os.File, int, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, 0, err
	}
	defer ln.Close() // the file below is a dup
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, 0, errors.New("not a TCP listener")
	}
	f, err := tl.File()
	if err != nil {
		return nil, 0, err
	}
	return f, tl.Addr().(*net.TCPAddr).Port, nil
}

// commandLine renders a command for logs and the error page.
func commandLine(prog string, args []string) string {
	var b strings.Builder
	for i, a := range append([]string{prog}, args...) {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		b.WriteString(a)
	}
	return b.String()
}
