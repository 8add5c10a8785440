package ratelog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelog"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestFloodIsSummed(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	clk := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	log := slog.New(ratelog.New(slog.NewTextHandler(&buf, nil), ratelog.Options{Burst: 3, Window: time.Second, Now: clk.now}))
	app := log.With("app", "s/")
	for i := range 1000 {
		app.Info("request refused", "path", "/x", "i", i)
	}
	app.Warn("something else")  // another kind passes
	log.Info("request refused") // another logger: another kind
	if n := strings.Count(buf.String(), "msg=\"request refused\""); n != 4 {
		t.Errorf("%d request-refused lines in the window, want 3 + 1 from the other logger:\n%s", n, buf.String())
	}
	clk.add(1500 * time.Millisecond)
	app.Info("request refused", "i", 1000)
	out := buf.String()
	if !strings.Contains(out, `msg="log lines suppressed" app=s/ msg_suppressed="request refused" count=997`) {
		t.Errorf("no summary of the 997 dropped lines:\n%s", out)
	}
	if !strings.Contains(out, "i=1000") {
		t.Errorf("the first line of the next window was dropped:\n%s", out)
	}
}

func TestOtherKindSweepsEndedWindows(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	clk := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	log := slog.New(ratelog.New(slog.NewTextHandler(&buf, nil), ratelog.Options{Burst: 1, Now: clk.now}))
	for range 5 {
		log.Info("flood")
	}
	clk.add(2 * time.Second)
	log.Info("quiet again")
	if !strings.Contains(buf.String(), `msg_suppressed=flood count=4`) {
		t.Errorf("the ended flood was not summed up by the next line:\n%s", buf.String())
	}
}

func TestExempt(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	exempt := func(r slog.Record) bool {
		found := false
		r.Attrs(func(a slog.Attr) bool { found = a.Key == "stream"; return !found })
		return found
	}
	log := slog.New(ratelog.New(slog.NewTextHandler(&buf, nil), ratelog.Options{Burst: 1, Exempt: exempt}))
	for range 5 {
		log.Info("same app line", "stream", "stdout")
	}
	if n := strings.Count(buf.String(), "same app line"); n != 5 {
		t.Errorf("%d of 5 exempt lines written", n)
	}
}
