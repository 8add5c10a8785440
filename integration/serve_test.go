package integration

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// serveResult runs Serve on a fresh loopback listener in a goroutine owned
// by the test and returns the address and the channel Serve's result
// arrives on.
func startServe(t *testing.T, ctx context.Context, h http.Handler, opts ServeOptions) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, h, opts) }()
	return ln.Addr().String(), done
}

func waitServe(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func postShutdown(t *testing.T, addr, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/iisintegration", nil)
	req.Header.Set(HeaderToken, token)
	req.Header.Set(HeaderEvent, "shutdown")
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("shutdown request: status %d", resp.StatusCode)
	}
}

// blockingHandler answers 200 once release is closed, after signalling
// started.
func blockingHandler(started chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done")
	})
}

type getResult struct {
	status int
	body   string
	err    error
}

// getAsync sends GET / on a new connection and delivers the outcome.
func getAsync(addr, token string) <-chan getResult {
	out := make(chan getResult, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Header.Set(HeaderToken, token)
		req.Close = true
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- getResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- getResult{status: resp.StatusCode, body: string(b), err: err}
	}()
	return out
}

func TestServeStopsGracefullyOnShutdownEvent(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	addr, done := startServe(t, t.Context(), blockingHandler(started, release), ServeOptions{
		Config:     &Config{Token: "tok", PathBase: "/", Port: "1"},
		OnShutdown: func() { calls.Add(1) },
	})

	inflight := getAsync(addr, "tok")
	<-started
	postShutdown(t, addr, "tok")
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-inflight; r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Errorf("in-flight request: %+v, want 200 done", r)
	}
	if err := waitServe(t, done); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if calls.Load() != 1 {
		t.Errorf("OnShutdown called %d times", calls.Load())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("still accepting connections after Serve returned")
	}
}

func TestServeStopsOnContextDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	addr, done := startServe(t, ctx, http.NotFoundHandler(), ServeOptions{})
	if r := <-getAsync(addr, ""); r.err != nil || r.status != http.StatusNotFound {
		t.Fatalf("request before stop: %+v", r)
	}
	cancel()
	if err := waitServe(t, done); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestServeDrainDeadline(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	addr, done := startServe(t, ctx, blockingHandler(started, release), ServeOptions{ShutdownTimeout: 50 * time.Millisecond})
	inflight := getAsync(addr, "")
	<-started
	cancel()
	if err := waitServe(t, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve = %v, want DeadlineExceeded", err)
	}
	if r := <-inflight; r.err == nil {
		t.Errorf("in-flight request survived the forced close: %+v", r)
	}
}

func TestServeListenerError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := Serve(t.Context(), http.NotFoundHandler(), ServeOptions{Listener: ln}); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}
