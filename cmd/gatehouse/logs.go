package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// logFilePoll is how often `gatehouse logs -f` looks for new lines in an
// app's stdout log file (a file has no event to wait on that works for
// every file system).
const logFilePoll = 250 * time.Millisecond

// Logs writes the last lines of name's log to w ("" for every app's
// Gatehouse lines): its stdout log file's tail when the app writes one,
// then Gatehouse's lines about it (with the app's output when there is no
// file); with follow, it goes on writing new lines until ctx ends.
func (c *controller) Logs(ctx context.Context, name string, lines int, follow bool, w io.Writer) error {
	if c.ring == nil {
		return fmt.Errorf("this gatehouse keeps no log lines")
	}
	lines = cmp.Or(lines, 100)
	app, file := "", ""
	if name != "" {
		a, err := c.apps.find(name)
		if err != nil {
			return err
		}
		app = appName(a.Site(), a.Path())
		if cfg := a.Config(); cfg.StdoutLogEnabled {
			file = newestLogFile(cfg.StdoutLogFile)
		}
	}
	var lines0 []string
	var off int64
	if file != "" {
		var err error
		if lines0, off, err = tailFile(file, lines); err != nil {
			return err
		}
		fmt.Fprintf(w, "==> %s <==\n", file)
		for _, l := range lines0 {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintf(w, "==> gatehouse <==\n")
	}
	sub, unsubscribe := c.ring.subscribe() // before the tail: no line falls between
	defer unsubscribe()
	for _, l := range c.ring.tail(app, lines) {
		fmt.Fprintln(w, l)
	}
	flush(w)
	if !follow {
		return nil
	}
	tick := time.NewTicker(logFilePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-sub:
			if app != "" && l.app != app {
				continue
			}
			if _, err := fmt.Fprintln(w, l.text); err != nil {
				return nil // the client went away
			}
		case <-tick.C:
			if file == "" {
				continue
			}
			var err error
			if off, err = copyNew(w, file, off); err != nil {
				return nil
			}
		}
		flush(w)
	}
}

// flush sends what w holds (an http.ResponseWriter) to the client.
func flush(w io.Writer) {
	if f, ok := w.(interface{ Flush() }); ok {
		f.Flush()
	}
}

// newestLogFile returns the stdout log file most recently written under
// prefix (prefix_<time>_<pid>.log), "" if none.
func newestLogFile(prefix string) string {
	files, _ := filepath.Glob(prefix + "_*.log")
	var best string
	var bestT time.Time
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && !fi.ModTime().Before(bestT) {
			best, bestT = f, fi.ModTime()
		}
	}
	return best
}

// tailFile returns the last n lines of path (read from at most its last
// 1 MiB) and its size.
func tailFile(path string, n int) ([]string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read the stdout log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read the stdout log: %w", err)
	}
	start := max(0, fi.Size()-1<<20)
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("read the stdout log: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if start > 0 && len(lines) > 0 {
		lines = lines[1:] // cut in the middle
	}
	return lines[max(0, len(lines)-n):], fi.Size(), nil
}

// copyNew writes what was appended to path since off and returns the new
// offset; a file that shrank (a new one) is read from the start.
func copyNew(w io.Writer, path string, off int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return off, nil // rotated away: nothing new here
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == off {
		return off, nil
	}
	if fi.Size() < off {
		off = 0
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off, nil
	}
	n, err := io.Copy(w, f)
	return off + n, err
}

// cmdLogs prints an app's output and Gatehouse's lines about it, as pm2
// logs does.
func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ctlFlags
	fset := newFlagSet("logs", "logs [SITE/APP] [-n LINES] [-f] [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nPrints the last lines of the app's output (its stdout log file when web.config\nsets stdoutLogEnabled, else the lines Gatehouse keeps in memory) and\nGatehouse's own lines about it; without SITE/APP, Gatehouse's lines about\nevery app. -f goes on printing new lines until interrupted.", stderr)
	f.register(fset)
	n := fset.Int("n", 100, "how many of the last lines to print")
	follow := fset.Bool("f", false, "follow: keep printing new lines until interrupted (Ctrl-C)")
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) > 1 || *n < 1 {
		fset.Usage()
		return usageErr("logs takes at most one SITE/APP and -n of 1 or more")
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("no admin socket beside %s: gatehouse is not running, or was started with another --admin (or --admin off)", f.pidFile)
	}
	if !*follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	return callErr(c.Logs(ctx, name, *n, *follow, stdout))
}
