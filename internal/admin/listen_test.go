package admin

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSocketCandidates: the one search order serve binds by and the
// commands look in, the systemd folder first and the old file name after
// the new one.
func TestSocketCandidates(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RUNTIME_DIRECTORY": "/run/x:/run/y", "XDG_RUNTIME_DIR": "/run/user/1000"}
	var got []string
	for _, c := range socketCandidates(func(k string) string { return env[k] }, "/tmp", 1000) {
		got = append(got, c.path)
	}
	want := []string{"/run/x/gatehouse.sock", "/run/x/admin.sock", "/run/gatehouse/gatehouse.sock", "/run/gatehouse/admin.sock",
		"/run/user/1000/gatehouse/gatehouse.sock", "/tmp/gatehouse-1000/gatehouse.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates = %q, want %q", got, want)
	}
	got = got[:0]
	for _, c := range socketCandidates(func(string) string { return "" }, "/tmp", 0) {
		got = append(got, c.path)
	}
	want = []string{"/run/gatehouse/gatehouse.sock", "/run/gatehouse/admin.sock", "/tmp/gatehouse-0/gatehouse.sock"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates without a session = %q, want %q", got, want)
	}
}

// TestFindSocketStale: a socket nobody answers on (its gatehouse was
// killed) is "gatehouse is not running", not "connection refused"; a live
// one is found. It looks only in its own folder: a Gatehouse that another
// test runs meanwhile may serve on /run/gatehouse, the machine's place.
func TestFindSocketStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	cands := []candidate{{path: path, kind: "runtime"}}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if got, err := findSocket(cands); err != nil || got != path {
		t.Errorf("FindSocket with a live socket = %q, %v; want %s", got, err, path)
	}
	ln.Close() // the file stays, as after kill -9
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	_, err = findSocket(cands)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "refused") {
		t.Errorf("FindSocket with a stale socket: %v, want ErrNotRunning naming %s", err, path)
	}
}
