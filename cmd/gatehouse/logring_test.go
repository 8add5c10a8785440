package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRingHandler: the ring keeps the lines about each app (its output and
// Gatehouse's own lines), also those --log-level hides from the log, and
// tail filters by app, oldest first.
func TestRingHandler(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ring := newLogRing()
	log := slog.New(&ringHandler{next: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), ring: ring})
	a := log.With("app", "shop/")
	a.Info("listening on :5000", "stream", "stdout")
	a.Warn("process exited", "pid", 42)
	log.Warn("the app's program cannot be found", "app", "blog/") // an app named in the record
	log.Info("listening", "addr", ":80")                          // about no app

	got := ring.tail("shop/", 10)
	if len(got) != 2 || !strings.Contains(got[0], "shop/ stdout| listening on :5000") || !strings.Contains(got[1], "shop/ gatehouse WARN: process exited pid=42") {
		t.Errorf("tail shop/ = %q", got)
	}
	if all := ring.tail("", 10); len(all) != 3 || !strings.Contains(all[2], "blog/") {
		t.Errorf("tail of every app = %q, want 3 lines, blog/'s last", all)
	}
	if s := out.String(); strings.Contains(s, "listening on :5000") || !strings.Contains(s, "process exited") {
		t.Errorf("the log got what its level hides, or lost what it shows:\n%s", s)
	}
	for range logRingSize {
		a.Info("x", "stream", "stdout")
	}
	if n := len(ring.tail("", logRingSize+10)); n != logRingSize {
		t.Errorf("ring holds %d lines, want %d", n, logRingSize)
	}
}
