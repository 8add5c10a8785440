package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SocketMode is the admin socket's file mode: the owner and its group may
// control Gatehouse (put operators in Gatehouse's group), nobody else.
const SocketMode fs.FileMode = 0o660

// RunDir is the system service's runtime folder (systemd's
// RuntimeDirectory=gatehouse): its admin socket is RunDir/SocketName.
const RunDir = "/run/gatehouse"

// SocketName is the admin socket's file name in a runtime folder.
const SocketName = "gatehouse.sock"

// legacySocketName is the name Gatehouse used in a runtime folder before
// it was SocketName; the commands still look for it.
const legacySocketName = "admin.sock"

// ErrNotRunning: no Gatehouse answers on the admin socket (none is there,
// or one that was killed left it behind).
var ErrNotRunning = errors.New("gatehouse is not running")

// DefaultSocket returns the admin socket path serve binds when --admin is
// not given: beside the pid file (gatehouse.pid → gatehouse.sock), else the
// first of:
//
//	$RUNTIME_DIRECTORY/gatehouse.sock            set by systemd's RuntimeDirectory=
//	/run/gatehouse/gatehouse.sock                when that folder exists and is writable
//	$XDG_RUNTIME_DIR/gatehouse/gatehouse.sock    a user's session
//	$TMPDIR/gatehouse-UID/gatehouse.sock         a user without a session (folder 0700)
//
// The commands look in the same places (see FindSocket). "" means none
// could be used (a foreign or loose $TMPDIR/gatehouse-UID).
func DefaultSocket(pidFile string) string {
	if pidFile != "" {
		return strings.TrimSuffix(pidFile, filepath.Ext(pidFile)) + ".sock"
	}
	for _, c := range socketCandidates(os.Getenv, os.TempDir(), os.Getuid()) {
		if c.legacy {
			continue
		}
		dir := filepath.Dir(c.path)
		switch c.kind {
		case "run":
			if unix.Access(dir, unix.W_OK) != nil {
				continue
			}
		case "tmp":
			if err := privateDir(dir); err != nil {
				continue
			}
		}
		return c.path
	}
	return ""
}

// candidate is a place the admin socket may be.
type candidate struct {
	path   string
	kind   string // "runtime", "run", "xdg", "tmp"
	legacy bool   // the old file name
}

// socketCandidates lists, in order, where a Gatehouse started without
// --admin and --pid-file puts its admin socket.
func socketCandidates(getenv func(string) string, tmp string, uid int) []candidate {
	var out []candidate
	if d := getenv("RUNTIME_DIRECTORY"); d != "" {
		// systemd may list several, separated by colons; the first is ours.
		d, _, _ = strings.Cut(d, ":")
		out = append(out, candidate{filepath.Join(d, SocketName), "runtime", false},
			candidate{filepath.Join(d, legacySocketName), "runtime", true})
	}
	out = append(out, candidate{filepath.Join(RunDir, SocketName), "run", false},
		candidate{filepath.Join(RunDir, legacySocketName), "run", true})
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		out = append(out, candidate{filepath.Join(d, "gatehouse", SocketName), "xdg", false})
	}
	return append(out, candidate{filepath.Join(tmp, "gatehouse-"+strconv.Itoa(uid), SocketName), "tmp", false})
}

// privateDir makes dir (mode 0700) or checks that the one there is a real
// folder of this user that nobody else may enter: in a shared $TMPDIR,
// another user could have made it first.
func privateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("%s is not a private folder of this user", dir)
	}
	return nil
}

// FindSocket returns the admin socket of the Gatehouse running on this
// machine that was started without --admin and --pid-file: the first
// place in DefaultSocket's list where a Gatehouse answers. Otherwise it
// returns an error wrapping ErrNotRunning that names the places it looked
// and any stale socket a killed Gatehouse left.
func FindSocket() (string, error) {
	return findSocket(socketCandidates(os.Getenv, os.TempDir(), os.Getuid()))
}

// findSocket is FindSocket over the places cands lists, in order.
func findSocket(cands []candidate) (string, error) {
	var stale, looked []string
	var denied error
	for _, c := range cands {
		looked = append(looked, c.path)
		st, err := os.Lstat(c.path)
		if err != nil || st.Mode()&fs.ModeSocket == 0 {
			continue
		}
		conn, err := net.DialTimeout("unix", c.path, time.Second)
		if err == nil {
			conn.Close()
			return c.path, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			denied = fmt.Errorf("admin socket %s: permission denied: join gatehouse's group (the socket is mode 0660) or run as its user", c.path)
			continue
		}
		stale = append(stale, c.path)
	}
	if denied != nil {
		return "", denied
	}
	if len(stale) > 0 {
		return "", fmt.Errorf("%w (its admin socket %s is left from a gatehouse that was killed)", ErrNotRunning, strings.Join(stale, ", "))
	}
	return "", fmt.Errorf("%w: no admin socket in %s (one started with --pid-file or --admin: pass the same flag)", ErrNotRunning, strings.Join(looked, ", "))
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
