package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTCPAddressNeedsTokenAndLoopbackOrigin serves the API as on
// --admin-addr: control and status calls need the token, a foreign Host
// or Origin is refused even with it, and the health endpoints and metrics
// stay open.
func TestTCPAddressNeedsTokenAndLoopbackOrigin(t *testing.T) {
	t.Parallel()
	token, err := EnsureToken(filepath.Join(t.TempDir(), "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctl := &fakeController{}
	srv := &Server{Controller: ctl, Token: token, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# metrics")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tc := range []struct {
		name, method, path, host, origin, token string
		want                                    int
	}{
		{"no token", "POST", "/v1/stop?app=a", "", "", "", 401},
		{"wrong token", "POST", "/v1/stop?app=a", "", "", "nope", 401},
		{"status without token", "GET", "/v1/status", "", "", "", 401},
		{"unknown path without token", "GET", "/v1/nothing", "", "", "", 401},
		{"foreign origin", "POST", "/v1/stop?app=a", "", "https://evil.example", token, 403},
		{"null origin", "POST", "/v1/stop?app=a", "", "null", token, 403},
		{"foreign host (DNS rebinding)", "POST", "/v1/stop?app=a", "evil.example:9090", "", token, 403},
		{"foreign host on a health endpoint", "GET", "/metrics", "evil.example", "", "", 403},
		{"good token", "POST", "/v1/stop?app=a", "", "", token, 200},
		{"good token, localhost and its origin", "POST", "/v1/start?app=a", "localhost:9090", "http://localhost:9090", token, 200},
		{"status with token", "GET", "/v1/status", "[::1]:9090", "", token, 200},
		{"healthz", "GET", "/healthz", "", "", "", 200},
		{"readyz", "GET", "/readyz", "", "", "", 200},
		{"metrics", "GET", "/metrics", "", "", "", 200},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.want)
		}
	}
	ctl.mu.Lock()
	calls := strings.Join(ctl.calls, ",")
	ctl.mu.Unlock()
	if calls != "stop a,start a" {
		t.Errorf("calls carried out: %q, want only the two with the token", calls)
	}
	// The Client sends the token; without it, the call fails with a 401 kind.
	if _, err := (&Client{Addr: addr, Token: token}).Status(t.Context()); err != nil {
		t.Errorf("Client with the token: %v", err)
	}
	var ce *CallError
	if err := (&Client{Addr: addr}).Control(t.Context(), "reload", ""); !errors.As(err, &ce) || ce.Kind != KindUnauthorized {
		t.Errorf("Client without the token: %v, want a %s CallError", err, KindUnauthorized)
	}
}

// TestEnsureToken checks the token file: created with TokenMode and a
// random token, kept as it is when present, refused when every user may
// read it.
func TestEnsureToken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "run", "gatehouse.token")
	tok, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != TokenMode || len(tok) != 2*tokenBytes {
		t.Fatalf("token file %v %v, token %q; want mode %v and %d hex digits", st.Mode(), err, tok, TokenMode, 2*tokenBytes)
	}
	if again, err := EnsureToken(path); err != nil || again != tok {
		t.Errorf("second EnsureToken = %q, %v; want the same token", again, err)
	}
	if read, err := ReadToken(path); err != nil || read != tok {
		t.Errorf("ReadToken = %q, %v", read, err)
	}
	other := filepath.Join(t.TempDir(), "other.token")
	if other2, err := EnsureToken(other); err != nil || other2 == tok {
		t.Errorf("another token file got %q (%v), want a new random token", other2, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureToken(path); err == nil || !strings.Contains(err.Error(), "every user") {
		t.Errorf("EnsureToken on a world-readable file: %v, want a refusal", err)
	}
	if got := TokenPath("/run/gh/gatehouse.sock"); got != "/run/gh/gatehouse.token" {
		t.Errorf("TokenPath = %q", got)
	}
}
