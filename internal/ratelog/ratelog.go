// Package ratelog keeps floods out of the log: a slog.Handler that passes
// the first Burst records of each kind per Window and counts the rest, then
// writes one "log lines suppressed" record saying how many of that kind it
// dropped. A kind is the logger (the attributes and groups added with With
// and WithGroup), the level and the message; a request flood that makes
// the same line over and over for different paths or clients is one kind.
//
// The summary for a kind is written when its next record arrives after the
// window, or when any record arrives after the window of another kind
// ended; a flood that just stops is summed up by the next line logged.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options tune a Handler. The zero value gives the defaults.
type Options struct {
	// Burst is how many records of one kind pass per window (default 20).
	Burst int
	// Window is the length of a window (default 1 s).
	Window time.Duration
	// Now returns the time (tests); nil means time.Now.
	Now func() time.Time
	// Exempt, if set, picks records that always pass and are not counted
	// (the apps' own output, which has its own drop-and-count).
	Exempt func(r slog.Record) bool
}

// maxKinds bounds the kinds tracked at once; past it the table is swept.
const maxKinds = 4096

// Handler wraps another slog.Handler. It is safe for concurrent use.
type Handler struct {
	next slog.Handler
	st   *state
	id   *int // identity of the logger (With/WithGroup make a new one)
}

type kind struct {
	id    *int
	level slog.Level
	msg   string
}

type count struct {
	start      time.Time // the current window's start
	n          int       // records of the window
	suppressed int       // records dropped in the window
	h          slog.Handler
}

type state struct {
	mu     sync.Mutex // protects kinds
	kinds  map[kind]*count
	burst  int
	window time.Duration
	now    func() time.Time
	exempt func(r slog.Record) bool
}

// New returns a Handler that passes records to next within opts' limits.
func New(next slog.Handler, opts Options) *Handler {
	st := &state{kinds: map[kind]*count{}, burst: opts.Burst, window: opts.Window, now: opts.Now, exempt: opts.Exempt}
	if st.burst <= 0 {
		st.burst = 20
	}
	if st.window <= 0 {
		st.window = time.Second
	}
	if st.now == nil {
		st.now = time.Now
	}
	return &Handler{next: next, st: st, id: new(int)}
}

// Enabled reports whether next handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on, or counts it when its kind is over the burst.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if h.st.exempt != nil && h.st.exempt(r) {
		return h.next.Handle(ctx, r)
	}
	now := h.st.now()
	pass, summaries := h.st.admit(kind{h.id, r.Level, r.Message}, h.next, now)
	for _, s := range summaries {
		_ = s.h.Handle(ctx, s.record)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// summary is a "log lines suppressed" record and the handler it goes to.
type summary struct {
	h      slog.Handler
	record slog.Record
}

// admit counts a record of kind k at now. It reports whether the record
// passes, and the summaries of windows that have ended.
func (st *state) admit(k kind, h slog.Handler, now time.Time) (bool, []summary) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []summary
	c := st.kinds[k]
	if c == nil {
		if len(st.kinds) >= maxKinds {
			out = st.sweep(now, true)
		}
		c = &count{start: now, h: h}
		st.kinds[k] = c
	} else if now.Sub(c.start) >= st.window {
		if c.suppressed > 0 {
			out = append(out, c.summary(k, now))
		}
		c.start, c.n, c.suppressed = now, 0, 0
	}
	c.n++
	if c.n > st.burst {
		c.suppressed++
		return false, out
	}
	if len(out) == 0 && len(st.kinds) > 1 {
		out = st.sweep(now, false)
	}
	return true, out
}

// sweep sums up and forgets the kinds whose window has ended (all of them
// when all is set).
func (st *state) sweep(now time.Time, all bool) []summary {
	var out []summary
	for k, c := range st.kinds {
		if !all && now.Sub(c.start) < st.window {
			continue
		}
		if c.suppressed > 0 {
			out = append(out, c.summary(k, now))
		}
		delete(st.kinds, k)
	}
	return out
}

func (c *count) summary(k kind, now time.Time) summary {
	r := slog.NewRecord(now, k.level, "log lines suppressed", 0)
	r.AddAttrs(slog.String("msg_suppressed", k.msg), slog.Int("count", c.suppressed),
		slog.Duration("window", now.Sub(c.start)))
	return summary{h: c.h, record: r}
}

// WithAttrs returns a Handler for a logger with attrs added: a new kind.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), st: h.st, id: new(int)}
}

// WithGroup returns a Handler for a logger with a group opened.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st, id: new(int)}
}
