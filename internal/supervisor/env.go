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
	"sync"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Port ranges from ANCM V2: random ports come from 10000–48000 (less the
// kernel's ephemeral range, see appPorts); a port fixed with ASPNETCORE_PORT
// must be in 1025–48000.
const (
	minRandomPort = 10000
	minFixedPort  = 1025
	maxPort       = 48000
	portTries     = 10 // ANCM tries 10 random ports before it gives up; we then scan
)

// portRange is the ports lo through hi.
type portRange struct{ lo, hi int }

func (r portRange) size() int { return max(r.hi-r.lo+1, 0) }

// defaultEphemeral is Linux's ip_local_port_range when it cannot be read.
var defaultEphemeral = portRange{32768, 60999}

// ephemeralPorts is the kernel's range for the local ports of outgoing
// connections, read once, at the first start.
var ephemeralPorts = sync.OnceValue(func() portRange {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeral
	}
	return parsePortRange(string(b))
})

// parsePortRange parses "lo hi" as ip_local_port_range shows it; anything
// else gives defaultEphemeral.
func parsePortRange(s string) portRange {
	f := strings.Fields(s)
	if len(f) != 2 {
		return defaultEphemeral
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return defaultEphemeral
	}
	return portRange{lo, hi}
}

// appPorts returns the parts of 10000–48000 outside eph, where random app
// ports are picked: a port the kernel may give an outgoing connection
// (Gatehouse's own connections to its apps among them) could be taken
// between the free-port check and the app's bind. If eph covers all of
// 10000–48000, it returns 10000–48000: a start that then loses its port is
// retried (see Pool.run).
func appPorts(eph portRange) []portRange {
	all := portRange{minRandomPort, maxPort}
	var out []portRange
	for _, r := range []portRange{{all.lo, min(all.hi, eph.lo-1)}, {max(all.lo, eph.hi+1), all.hi}} {
		if r.size() > 0 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return []portRange{all}
	}
	return out
}

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

// pickPort returns a random free port for an app: in 10000–48000 as in
// ANCM V2, but outside the kernel's ephemeral range (see appPorts).
func pickPort() (int, error) {
	return pickPortIn(appPorts(ephemeralPorts()), portFree)
}

// pickPortIn returns a random port in ranges for which free holds: it tries
// portTries random ports, as ANCM does, then scans from a random one.
func pickPortIn(ranges []portRange, free func(int) bool) (int, error) {
	n := 0
	for _, r := range ranges {
		n += r.size()
	}
	nth := func(i int) int { // 0 ≤ i < n
		k := 0
		for ; i >= ranges[k].size(); k++ {
			i -= ranges[k].size()
		}
		return ranges[k].lo + i
	}
	if n == 0 {
		return 0, errors.New("no ports to choose from")
	}
	for range portTries {
		if port := nth(mrand.IntN(n)); free(port) {
			return port, nil
		}
	}
	start := mrand.IntN(n)
	for i := range n {
		if port := nth((start + i) % n); free(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in %v", ranges)
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
