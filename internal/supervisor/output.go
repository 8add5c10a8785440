package supervisor

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

const (
	captureMax = 30000   // bytes of output kept for a StartError, as ANCM keeps 30,000 characters
	maxLine    = 8 << 10 // longer lines are logged in pieces
	lineQueue  = 256     // lines waiting for a slow logger; more are dropped
	readBuf    = 32 << 10
)

// output carries a process's stdout and stderr through pipes that Gatehouse
// reads (the child gets the write ends as plain files, so os/exec starts no
// copying goroutines and Wait returns as soon as the process exits). The
// readers tee the first captureMax bytes into a buffer for start errors and
// write everything to the log file, or, without one, queue lines for the
// logger; a full queue drops lines instead of blocking, so the app is never
// stalled by a slow log handler and memory stays bounded.
type output struct {
	file    *logFile // nil: lines go to the logger
	readers sync.WaitGroup
	rs, ws  []*os.File
	streams []string

	capMu sync.Mutex
	capt  []byte

	lines   chan outLine
	dropped atomic.Int64
}

type outLine struct {
	stream, text string
}

// newOutput opens the log file (falling back to the logger with a warning
// when it cannot) and the pipes.
func newOutput(spec Spec, log *slog.Logger) *output {
	o := &output{}
	if spec.StdoutLog != "" {
		f, err := openLogFile(spec.StdoutLog, spec.StdoutLogMaxSize, spec.StdoutLogMaxFiles, log)
		if err != nil {
			log.Warn("could not create the stdout log file; app output goes to the log instead",
				"prefix", spec.StdoutLog, "err", err)
		} else {
			o.file = f
		}
	}
	o.streams = []string{"stdout", "stderr"}
	if o.file != nil {
		o.streams = []string{"output"} // one pipe for both, as ANCM shares one handle
	} else {
		o.lines = make(chan outLine, lineQueue)
	}
	for range o.streams {
		r, w, err := os.Pipe()
		if err != nil {
			log.Warn("could not create a pipe for app output; discarding it", "err", err)
			o.closeReaders()
			o.closeWriters()
			o.rs, o.ws = nil, nil
			return o
		}
		o.rs, o.ws = append(o.rs, r), append(o.ws, w)
	}
	return o
}

// attach gives the write ends to cmd; stdin stays /dev/null.
func (o *output) attach(cmd *exec.Cmd) {
	switch len(o.ws) {
	case 1:
		cmd.Stdout, cmd.Stderr = o.ws[0], o.ws[0]
	case 2:
		cmd.Stdout, cmd.Stderr = o.ws[0], o.ws[1]
	}
}

func (o *output) closeWriters() {
	for _, w := range o.ws {
		w.Close()
	}
}

func (o *output) closeReaders() {
	for _, r := range o.rs {
		r.Close()
	}
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
}

// start runs the readers, and the line logger in wg (it may outlive the
// process while it empties the queue).
func (o *output) start(wg *sync.WaitGroup, log *slog.Logger, pid int) {
	for i, r := range o.rs {
		o.readers.Go(func() { o.copy(r, o.streams[i]) })
	}
	if o.lines != nil {
		if len(o.rs) == 0 {
			close(o.lines)
		}
		wg.Go(func() { o.logLines(log) })
	}
}

// drain waits for the readers to reach EOF; they do once every process of
// the group is gone. If some escaped process still holds a pipe after bound,
// the read ends are closed. It reports whether the drain was clean.
func (o *output) drain(bound time.Duration) bool {
	done := make(chan struct{})
	go func() { o.readers.Wait(); close(done) }() // ends once readers end, forced below
	clean := true
	select {
	case <-done:
	case <-time.After(bound):
		clean = false
		for _, r := range o.rs {
			r.Close()
		}
		<-done
	}
	for _, r := range o.rs {
		r.Close()
	}
	if o.lines != nil && len(o.rs) > 0 {
		close(o.lines)
	}
	if o.file != nil {
		o.file.Close()
	}
	return clean
}

// reopen starts a new stdout log file (logrotate moved the current one);
// nothing when the output goes to the logger.
func (o *output) reopen() error {
	if o == nil || o.file == nil {
		return nil
	}
	return o.file.Reopen()
}

// captured returns the first captureMax bytes of output.
func (o *output) captured() []byte {
	if o == nil {
		return nil
	}
	o.capMu.Lock()
	defer o.capMu.Unlock()
	return bytes.Clone(o.capt)
}

func (o *output) capture(b []byte) {
	if len(b) == 0 {
		return
	}
	o.capMu.Lock()
	defer o.capMu.Unlock()
	if n := captureMax - len(o.capt); n > 0 {
		o.capt = append(o.capt, b[:min(n, len(b))]...)
	}
}

// captureLines captures the complete lines of b, after pending (the
// stream's unfinished line), and returns the new unfinished rest: stdout
// and stderr, read by two readers, then interleave by whole lines in the
// order they were finished, never in the middle of a line. An unfinished
// line longer than what is left to capture is captured at once.
func (o *output) captureLines(pending, b []byte) []byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		o.capture(append(pending, b[:i+1]...))
		pending, b = pending[:0], b[i+1:]
	}
	pending = append(pending, b...)
	if len(pending) >= captureMax {
		o.capture(pending)
		pending = pending[:0]
	}
	return pending
}

// copy reads one pipe to EOF.
func (o *output) copy(r *os.File, stream string) {
	buf := make([]byte, readBuf)
	var line, capt []byte
	defer func() { o.capture(capt) }() // an unfinished last line
	for {
		n, err := r.Read(buf)
		if n > 0 {
			capt = o.captureLines(capt, buf[:n])
			if o.file != nil {
				o.file.Write(buf[:n])
			} else {
				line = o.lineOut(line, buf[:n], stream)
			}
		}
		if err != nil {
			break
		}
	}
	if len(line) > 0 {
		o.send(stream, line)
	}
}

// lineOut splits b into lines, queueing each complete one, and returns the
// unfinished rest.
func (o *output) lineOut(pending, b []byte, stream string) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			pending = append(pending, b...)
			for len(pending) >= maxLine {
				o.send(stream, pending[:maxLine])
				pending = append(pending[:0], pending[maxLine:]...)
			}
			return pending
		}
		pending = append(pending, b[:i]...)
		b = b[i+1:]
		for len(pending) > maxLine {
			o.send(stream, pending[:maxLine])
			pending = append(pending[:0], pending[maxLine:]...)
		}
		o.send(stream, pending)
		pending = pending[:0]
	}
	return pending
}

func (o *output) send(stream string, line []byte) {
	select {
	case o.lines <- outLine{stream: stream, text: string(bytes.TrimRight(line, "\r"))}:
	default:
		o.dropped.Add(1)
	}
}

// logLines writes queued lines to the logger until the queue is closed.
func (o *output) logLines(log *slog.Logger) {
	report := func() {
		if n := o.dropped.Swap(0); n > 0 {
			log.Warn("dropped app output lines: the log handler is too slow", "lines", n)
		}
	}
	for l := range o.lines {
		report()
		log.LogAttrs(context.Background(), slog.LevelInfo, l.text, slog.String("stream", l.stream))
	}
	report()
}

// joinCapped joins two captures, keeping at most captureMax bytes.
func joinCapped(a, b []byte) []byte {
	out := append(bytes.Clone(a), b...)
	if len(out) > captureMax {
		out = out[:captureMax]
	}
	return out
}
