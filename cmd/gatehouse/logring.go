package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logRingSize is how many lines the ring keeps, over every app.
const logRingSize = 5000

// logLine is one line of the ring: an app's output line, or one of
// Gatehouse's own records about an app.
type logLine struct {
	app  string // "SITE/PATH"; "" for Gatehouse's lines about no app
	text string
}

// logRing keeps Gatehouse's latest log lines in memory, with the app each
// is about, for `gatehouse logs`: the apps' output (when they have no
// stdout log file) and Gatehouse's own lines about them. Followers get
// every new line; one that does not keep up loses lines rather than
// slowing the log down. Safe for concurrent use.
type logRing struct {
	mu        sync.Mutex // protects lines, next, full, followers
	lines     []logLine
	next      int
	full      bool
	followers map[chan logLine]struct{}
}

func newLogRing() *logRing {
	return &logRing{lines: make([]logLine, logRingSize), followers: map[chan logLine]struct{}{}}
}

func (r *logRing) add(l logLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
	r.full = r.full || r.next == 0
	for ch := range r.followers {
		select {
		case ch <- l:
		default: // a slow follower loses the line
		}
	}
}

// tail returns the last n lines about app ("" for every line), oldest
// first.
func (r *logRing) tail(app string, n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []logLine
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	var out []string
	for i := len(all) - 1; i >= 0 && len(out) < n; i-- {
		if app == "" || all[i].app == app {
			out = append(out, all[i].text)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// subscribe returns a channel that gets every new line from now on, and
// the function that ends the subscription.
func (r *logRing) subscribe() (<-chan logLine, func()) {
	ch := make(chan logLine, 256)
	r.mu.Lock()
	r.followers[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.followers, ch)
		r.mu.Unlock()
	}
}

// ringHandler is a slog.Handler that passes every record on to next and
// copies the ones about an app (an "app" attribute) into the ring as one
// text line.
type ringHandler struct {
	next  slog.Handler
	ring  *logRing
	app   string // from WithAttrs
	attrs string // other WithAttrs attributes, formatted
}

// Enabled lets every record of an app's logger through at Info and above,
// so the ring has the app's lines even when --log-level hides them from
// the log; Handle passes on only what the log takes.
func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return (h.app != "" && l >= slog.LevelInfo) || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.keep(r)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// keep copies r into the ring as one text line when it is about an app.
func (h *ringHandler) keep(r slog.Record) {
	app, stream := h.app, ""
	var b strings.Builder
	b.WriteString(r.Time.Format(time.RFC3339))
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "app":
			app = a.Value.String()
		case "stream":
			stream = a.Value.String()
		}
		return true
	})
	if app != "" {
		if stream != "" { // the app's own line, as it wrote it
			fmt.Fprintf(&b, " %s %s| %s", app, stream, r.Message)
		} else {
			fmt.Fprintf(&b, " %s gatehouse %s: %s%s", app, r.Level, r.Message, h.attrs)
			r.Attrs(func(a slog.Attr) bool {
				if a.Key != "app" {
					fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
				}
				return true
			})
		}
		h.ring.add(logLine{app: app, text: b.String()})
	}
}

func (h *ringHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "app" {
			h2.app = a.Value.String()
		} else {
			h2.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		}
	}
	return &h2
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.next = h.next.WithGroup(name)
	return &h2
}
