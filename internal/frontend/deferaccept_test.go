package frontend_test

import (
	"context"
	"testing"
)

// TestDeferAccept: a client that connects and sends nothing is not
// handed to Gatehouse while timeouts.deferAccept holds it (the kernel
// keeps it, TCP_DEFER_ACCEPT), and is once its request comes; with
// deferAccept off (-1) it is accepted at once. A connection made after
// it, which sends a request, is accepted after it when both are queued
// (the accept queue is in order), so by the time that request is
// answered, the silent one is counted if it was handed over. The
// setting is applied to the listening socket at start and on a reload.
func TestDeferAccept(t *testing.T) {
	t.Parallel()
	// 30 s: long past the test, so the kernel cannot give up waiting for
	// the silent client's bytes meanwhile (it does after about that long).
	const held, off = "timeouts: {deferAccept: 30s}\n", "timeouts: {deferAccept: -1s}\n"
	for _, tc := range []struct {
		name          string
		start, reload string // reload "": none
		wantOpen      int    // lean connections open once the second is answered
	}{
		{name: "held", start: held, wantOpen: 1},
		{name: "off", start: off, wantOpen: 2},
		{name: "held after a reload", start: off, reload: held, wantOpen: 1},
		{name: "off after a reload", start: held, reload: off, wantOpen: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "app")
			s := start(t, e.config(t, tc.start+plainSite), newOpener())
			if tc.reload != "" {
				if err := s.Reload(context.Background(), e.config(t, tc.reload+plainSite)); err != nil {
					t.Fatal(err)
				}
			}
			addr := s.Addrs()["http"].String()
			silent := dialRaw(t, addr)
			dialGet(t, addr)
			if open, _ := s.LeanConns(); open != tc.wantOpen {
				t.Fatalf("%d connections handed over once the second was answered, want %d", open, tc.wantOpen)
			}
			// Its request comes: it is handed over and served.
			if code := getOn(t, silent); code != 200 {
				t.Fatalf("the silent connection's request: %d, want 200", code)
			}
		})
	}
}
