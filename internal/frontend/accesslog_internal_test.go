package frontend

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Access log files are readable by their owner and group only: 0640 less
// the umask.
func TestAccessLogFileMode(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/proc/self/status") // the umask, without changing it for parallel tests
	if err != nil {
		t.Fatal(err)
	}
	var umask os.FileMode
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			umask = os.FileMode(n)
		}
	}
	for _, format := range []string{"w3c", "json"} {
		path := filepath.Join(t.TempDir(), "logs", "access.log")
		l, err := openAccessLog(path, format, "", "test", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		l.close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := 0o640 &^ umask; fi.Mode().Perm() != want {
			t.Errorf("%s access log mode %v, want %v (0640 less the umask %03o)", format, fi.Mode().Perm(), want, umask)
		}
	}
}
