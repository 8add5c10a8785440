package integration

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// listenFDsStart is the first file descriptor passed by socket activation
// (SD_LISTEN_FDS_START in sd-daemon).
const listenFDsStart = 3

// Listen returns the listener the app should serve on, chosen in this order:
//
//  1. A socket passed by socket activation: LISTEN_FDS is at least 1 and
//     LISTEN_PID equals os.Getpid(). The socket is file descriptor 3; further
//     descriptors are ignored. LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES are
//     then removed from the environment so that child processes do not
//     inherit them. (A supervisor written in Go cannot know the child's pid
//     before it starts; it can exec the app through
//     `sh -c 'LISTEN_PID=$$ exec "$0" "$@"' app args…`.)
//  2. 127.0.0.1:<port> when ASPNETCORE_PORT (or HTTP_PLATFORM_PORT, or PORT)
//     is set. The port must be a number from 1 to 65535.
//  3. fallbackAddr, as given to [net.Listen] with network "tcp".
//
// The caller owns the returned listener and must close it.
func Listen(fallbackAddr string) (net.Listener, error) {
	return listen(fallbackAddr, os.Getenv, os.Getpid())
}

func listen(fallbackAddr string, getenv func(string) string, pid int) (net.Listener, error) {
	if ok, err := activated(getenv, pid); err != nil {
		return nil, err
	} else if ok {
		return activationListener()
	}
	if port := portFrom(getenv); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("parse listen port %q: not a port number", port)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on module port: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", fallbackAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on fallback address: %w", err)
	}
	return ln, nil
}

// activated reports whether LISTEN_FDS/LISTEN_PID hand this process a socket.
// A LISTEN_PID for another process is not an error: the variables were
// inherited by mistake and are ignored, as sd_listen_fds does.
func activated(getenv func(string) string, pid int) (bool, error) {
	fds, pidStr := getenv(EnvListenFDs), getenv(EnvListenPID)
	if fds == "" || pidStr == "" {
		return false, nil
	}
	if p, err := strconv.Atoi(pidStr); err != nil || p != pid {
		return false, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return false, fmt.Errorf("parse %s=%q: not a count", EnvListenFDs, fds)
	}
	return n > 0, nil
}

func activationListener() (net.Listener, error) {
	f := os.NewFile(listenFDsStart, "LISTEN_FDS_3")
	if f == nil {
		return nil, fmt.Errorf("open activation socket: fd %d is not valid", listenFDsStart)
	}
	// net.FileListener duplicates the descriptor, so f is always closed.
	ln, err := net.FileListener(f)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("use activation socket: %w", err)
	}
	for _, name := range []string{EnvListenFDs, EnvListenPID, "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(name)
	}
	return ln, nil
}
