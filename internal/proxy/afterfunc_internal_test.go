package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// countingCtx is a context with an AfterFuncSlot that counts its calls.
type countingCtx struct {
	context.Context
	n int
}

func (c *countingCtx) AfterFuncSlot(f func()) func() bool {
	c.n++
	return context.AfterFunc(c.Context, f)
}

// TestAfterFuncUsesTheContexts: a context's AfterFuncSlot is used, and
// context.AfterFunc for any other context.
func TestAfterFuncUsesTheContexts(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	c := &countingCtx{Context: base}
	ran := make(chan struct{})
	afterFuncSlot(c, func() { close(ran) })
	if c.n != 1 {
		t.Fatalf("the context's AfterFuncSlot was called %d times; want 1", c.n)
	}
	cancel()
	<-ran
	ran2 := make(chan struct{})
	afterFuncSlot(base, func() { close(ran2) }) // ended: runs at once
	<-ran2
}

// doneCountingCtx is a countingCtx that counts the calls of its Done.
type doneCountingCtx struct {
	countingCtx
	dones int
}

func (c *doneCountingCtx) Done() <-chan struct{} {
	c.dones++
	return c.Context.Done()
}

// TestForwardAsksNoDone: a request forwarded on a pooled app connection
// with a context that has an AfterFuncSlot registers through it and
// never asks for the context's Done (the lean front end's connection
// context makes its done channel on the first Done: an allocation per
// connection that nothing waits on).
func TestForwardAsksNoDone(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	h := &Handler{Backend: fixed(app.Listener.Addr().String())}
	t.Cleanup(h.CloseIdleConnections)
	base, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for i := range 2 { // the first dials (net's dial asks for Done), the second reuses
		ctx := &doneCountingCtx{countingCtx: countingCtx{Context: base}}
		w := httptest.NewRecorder()
		pr := &pipeline.Request{Method: http.MethodGet, Path: "/", Host: "example.com", Proto: "HTTP/1.1",
			RemoteAddr: "127.0.0.1:5017", Header: pipeline.HTTPHeader(http.Header{})}
		h.Forward(ctx, w, pr, nil)
		if w.Code != http.StatusOK || w.Body.String() != "ok" {
			t.Fatalf("request %d: %d %q", i, w.Code, w.Body.String())
		}
		if ctx.n != 1 {
			t.Fatalf("request %d: the context's AfterFunc was called %d times; want 1", i, ctx.n)
		}
		if i == 1 && ctx.dones != 0 {
			t.Fatalf("request %d on a pooled connection asked for the context's Done %d times; want 0", i, ctx.dones)
		}
	}
}
