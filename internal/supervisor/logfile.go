package supervisor

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// logFileMode is the mode stdout log files are created with, before the
// umask: the owner and the file's group may read them (the group is
// Gatehouse's, or the folder's when the folder has the setgid bit, so an
// operator grants a group such as adm by setting it on the folder), others
// may not: apps print connection strings, tokens and user data.
const logFileMode = 0o640

// logFile writes one process's output to <prefix>_<UTC yyyyMMddHHmmss>_<pid>.log,
// pid being Gatehouse's own pid as in ANCM. It is written by one goroutine;
// Reopen may come from another (mu).
//
// Names and rotation: each process (each start, each of
// processesPerApplication) gets a file of its own, named for the second it
// started; if that name is taken (another start in the same second), _001,
// _002… are added before ".log". Past maxSize bytes the file is closed and
// a new one is started the same way. Both forms sort by time and then by sequence
// ("x_<ts>_<pid>.log" < "x_<ts>_<pid>_001.log"). After each new file, all but
// the newest maxFiles files of the prefix are deleted (by timestamp, then
// sequence).
type logFile struct {
	mu       sync.Mutex // serialises Write, Reopen and Close
	prefix   string
	maxSize  int64
	maxFiles int
	log      *slog.Logger

	f        *os.File
	size     int64
	lastBase string // name of the current file without sequence and ".log"
	seq      int    // its sequence (0 = none)
	broken   bool   // a write failed; the rest is discarded (logged once)
	midLine  bool   // the current file does not end with a newline
}

func openLogFile(prefix string, maxSize int64, maxFiles int, log *slog.Logger) (*logFile, error) {
	if !filepath.IsAbs(prefix) {
		return nil, fmt.Errorf("stdout log prefix %q is not an absolute path", prefix)
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	l := &logFile{prefix: prefix, maxSize: maxSize, maxFiles: maxFiles, log: log}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) baseName(t time.Time) string {
	return fmt.Sprintf("%s_%s_%d", l.prefix, t.UTC().Format("20060102150405"), os.Getpid())
}

// open creates a file not used before, named for now. Within one second
// the sequence only grows, so a name deleted by pruning is never reused out
// of order by this writer.
func (l *logFile) open() error {
	base := l.baseName(time.Now())
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND | os.O_EXCL
	seq := 0
	if base == l.lastBase {
		seq = l.seq + 1
	}
	for ; ; seq++ {
		name := base + ".log"
		if seq > 0 {
			name = fmt.Sprintf("%s_%03d.log", base, seq)
		}
		f, err := os.OpenFile(name, flags, logFileMode)
		if err == nil {
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			l.f, l.size, l.lastBase, l.seq = f, fi.Size(), base, seq
			break
		}
		if !os.IsExist(err) || seq >= 999 {
			return fmt.Errorf("open stdout log: %w", err)
		}
	}
	l.prune()
	return nil
}

// Write writes b, starting new files so that none grows past maxSize and
// every file but the newest ends at a line end: a file is only closed after
// a newline. A line that starts in a file is finished in it even past
// maxSize, up to maxLine bytes over; only a longer line is cut. A line that
// would not fit in what is left of a file starts the next one.
func (l *logFile) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for len(b) > 0 && !l.broken {
		chunk := b
		if l.maxSize > 0 {
			room := l.maxSize - l.size
			switch {
			case int64(len(chunk)) <= room:
			case room > 0 && bytes.LastIndexByte(chunk[:room], '\n') >= 0:
				chunk = chunk[:bytes.LastIndexByte(chunk[:room], '\n')+1]
			case !l.midLine && l.size > 0:
				if err := l.rotate(); err != nil {
					return n, err
				}
				continue
			default:
				// Finish the line begun in this file (or a line longer than
				// maxSize that starts an empty one), within the overshoot.
				if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
					chunk = chunk[:i+1]
				}
				if over := l.maxSize + maxLine - l.size; int64(len(chunk)) > over {
					chunk = chunk[:max(over, 0)]
					if len(chunk) == 0 {
						l.midLine = false // cut: the line goes on in the next file
						if err := l.rotate(); err != nil {
							return n, err
						}
						continue
					}
				}
			}
		}
		w, err := l.f.Write(chunk)
		n += w
		l.size += int64(w)
		if w > 0 {
			l.midLine = chunk[w-1] != '\n'
		}
		b = b[w:]
		if err != nil {
			l.fail(err)
			return n, err
		}
	}
	return n, nil
}

func (l *logFile) rotate() error {
	old := l.f.Name()
	l.f.Close()
	if err := l.open(); err != nil {
		l.fail(err)
		return err
	}
	l.log.Debug("stdout log rotated", "full", old, "file", l.f.Name(), "maxSize", l.maxSize)
	return nil
}

func (l *logFile) fail(err error) {
	if !l.broken {
		l.broken = true
		l.log.Warn("stdout log write failed; discarding further output of this process", "err", err)
	}
}

// Reopen starts a new file now, as past maxSize: after logrotate moved the
// current one away, output goes on in a file under the prefix. A closed or
// broken log stays as it is.
func (l *logFile) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.broken {
		return nil
	}
	return l.rotate()
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// prune deletes the oldest files of the prefix beyond maxFiles.
func (l *logFile) prune() {
	if l.maxFiles <= 0 {
		return
	}
	files := logFiles(l.prefix)
	if len(files) <= l.maxFiles {
		return
	}
	cur := l.f.Name()
	for _, f := range files[:len(files)-l.maxFiles] {
		if f.path == cur {
			continue
		}
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			l.log.Warn("could not delete an old stdout log", "file", f.path, "err", err)
		}
	}
}

type logName struct {
	path string
	ts   string
	pid  int
	seq  int
}

// logFiles lists the files named like this prefix's logs, oldest first.
func logFiles(prefix string) []logName {
	dir, base := filepath.Split(prefix)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `_(\d{14})_(\d+)(?:_(\d{3,}))?\.log$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []logName
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		seq, _ := strconv.Atoi(m[3])
		out = append(out, logName{path: filepath.Join(dir, e.Name()), ts: m[1], pid: pid, seq: seq})
	}
	slices.SortFunc(out, func(a, b logName) int {
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		if a.seq != b.seq {
			return a.seq - b.seq
		}
		return a.pid - b.pid
	})
	return out
}
