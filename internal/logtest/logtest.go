// Package logtest records log/slog records so tests can assert on what was
// logged. It is for tests only.
package logtest

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Record is one logged record with its attributes (including those added
// with WithAttrs) as strings.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// Recorder is a slog.Handler that keeps every record, at every level.
// Handlers derived from it with WithAttrs share its records. Create it with
// New; it is safe for concurrent use.
type Recorder struct {
	// Hook, if set, is called with each record before it is kept, on the
	// logging goroutine; a test can make it block to stand for a slow log.
	Hook func(Record)

	mu    *sync.Mutex // protects recs
	recs  *[]Record
	attrs []slog.Attr
}

// New returns an empty Recorder.
func New() *Recorder { return &Recorder{mu: new(sync.Mutex), recs: new([]Record)} }

// Logger returns a logger that writes to r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(r) }

// Enabled reports true for every level.
func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns a handler that adds as to each record and shares r's records.
func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(slices.Clip(r.attrs), as...)
	return &c
}

// WithGroup ignores groups: attribute keys are kept as given.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Handle keeps rec.
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	m := make(map[string]string, len(r.attrs)+rec.NumAttrs())
	for _, a := range r.attrs {
		m[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	kept := Record{Level: rec.Level, Msg: rec.Message, Attrs: m}
	if r.Hook != nil {
		r.Hook(kept)
	}
	r.mu.Lock()
	*r.recs = append(*r.recs, kept)
	r.mu.Unlock()
	return nil
}

// Find returns the records whose message contains msg, oldest first.
func (r *Recorder) Find(msg string) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range *r.recs {
		if strings.Contains(rec.Msg, msg) {
			out = append(out, rec)
		}
	}
	return out
}

// Dump writes every record to the test log, for failure diagnosis.
func (r *Recorder) Dump(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range *r.recs {
		t.Logf("log %s %q %v", rec.Level, rec.Msg, rec.Attrs)
	}
}
