package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SocketMode is the admin socket's file mode: the owner and its group may
// control Gatehouse (put operators in Gatehouse's group), nobody else.
const SocketMode fs.FileMode = 0o660

// RunDir is where the admin socket goes by default when Gatehouse has no
// pid file: systemd's RuntimeDirectory=gatehouse creates it.
const RunDir = "/run/gatehouse"

// DefaultSocket returns the admin socket path used when --admin is not
// given: beside the pid file (gatehouse.pid → gatehouse.sock), else in
// $RUNTIME_DIRECTORY (set by systemd's RuntimeDirectory=), else in RunDir
// if that folder exists. "" means none could be chosen.
func DefaultSocket(pidFile string) string {
	if pidFile != "" {
		return strings.TrimSuffix(pidFile, filepath.Ext(pidFile)) + ".sock"
	}
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		// systemd may list several, separated by colons; the first is ours.
		d, _, _ = strings.Cut(d, ":")
		return filepath.Join(d, "admin.sock")
	}
	if st, err := os.Stat(RunDir); err == nil && st.IsDir() {
		return filepath.Join(RunDir, "admin.sock")
	}
	return ""
}

// ListenUnix binds the admin socket at path with SocketMode. The socket is
// created in a private folder beside path and renamed into place, so it is
// never reachable with looser permissions. A socket already at path is
// replaced if nothing answers on it (left by a Gatehouse that was killed);
// if something does, ListenUnix fails rather than take it over. Closing
// the listener leaves the file (a new Gatehouse may serve on it after an
// upgrade): CloseUnix closes and removes it.
func ListenUnix(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("admin socket: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: another process (a running gatehouse?) answers on it", path)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".gatehouse-admin-")
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	tpath := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tpath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	// Closing must not unlink tpath (gone after the rename) but path.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(tpath, SocketMode); err != nil {
		return fail(err)
	}
	if err := os.Rename(tpath, path); err != nil {
		return fail(err)
	}
	return ln, nil
}

// CloseUnix closes the admin socket and removes its file.
func CloseUnix(ln *net.UnixListener, path string) {
	ln.Close()
	os.Remove(path)
}

// ListenTCP binds a loopback TCP address for the admin API ("127.0.0.1:9090",
// "[::1]:9090", "localhost:9090"). Other addresses are refused: the API
// controls Gatehouse and has no authentication of its own.
func ListenTCP(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: want host:port on loopback, e.g. 127.0.0.1:9090", addr)
	}
	if ip, err := netip.ParseAddr(host); (err != nil || !ip.IsLoopback()) && host != "localhost" {
		return nil, fmt.Errorf("admin address %q: only a loopback address is allowed (127.0.0.1 or [::1]); the admin API has no authentication", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin address: %w", err)
	}
	return ln, nil
}
