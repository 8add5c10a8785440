package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeController records calls and fails them as told.
type fakeController struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	ready error
}

func (f *fakeController) call(op, app string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+app)
	return f.fail[op]
}

func (f *fakeController) Status() Status {
	return Status{PID: 42, Apps: []App{{Name: "default/", State: "ready", Processes: []Process{{PID: 7, Port: 1234}}}}}
}
func (f *fakeController) Recycle(ctx context.Context, app string) error {
	return f.call("recycle", app)
}
func (f *fakeController) Stop(ctx context.Context, app string) error  { return f.call("stop", app) }
func (f *fakeController) Start(ctx context.Context, app string) error { return f.call("start", app) }
func (f *fakeController) Reload(ctx context.Context) error            { return f.call("reload", "") }
func (f *fakeController) Ready() error                                { return f.ready }
func (f *fakeController) Upgrade(ctx context.Context) error           { return f.call("upgrade", "") }
func (f *fakeController) Logs(ctx context.Context, app string, lines int, follow bool, w io.Writer) error {
	if err := f.call("logs", app); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d lines of %s\n", lines, app)
	return err
}
func (f *fakeController) Scale(ctx context.Context, app string, n int) error {
	return f.call("scale", fmt.Sprint(app, " ", n))
}
func (f *fakeController) ReopenLogs(ctx context.Context) error { return f.call("reopen-logs", "") }
func (f *fakeController) Save(ctx context.Context, forget bool) error {
	if forget {
		return f.call("save", "forget")
	}
	return f.call("save", "")
}

// serve runs an admin Server on a real Unix socket in a temp dir.
func serve(t *testing.T, ctl Controller) (*Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &Server{Controller: ctl, Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# metrics")
	})}
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		CloseUnix(ln, path)
	})
	return &Client{Socket: path}, path
}

func TestControlCallsAndErrors(t *testing.T) {
	t.Parallel()
	ctl := &fakeController{fail: map[string]error{
		"stop":   fmt.Errorf("stop x: %w", ErrNotFound),
		"reload": fmt.Errorf("%w: gatehouse.yaml:3: unknown field", ErrInvalidConfig),
		"start":  errors.New("start shop/: exited with code 7"),
	}}
	c, _ := serve(t, ctl)
	ctx := t.Context()
	for _, tc := range []struct {
		op, app  string
		want     error // nil: success
		kind, in string
	}{
		{"recycle", "", nil, "", ""},
		{"recycle", "shop/api", nil, "", ""},
		{"stop", "x", ErrNotFound, KindNotFound, "stop x"},
		{"reload", "", ErrInvalidConfig, KindConfig, "gatehouse.yaml:3"},
		{"start", "shop/", nil, KindFailed, "exited with code 7"},
	} {
		err := c.Control(ctx, tc.op, tc.app)
		if tc.kind == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.op, tc.app, err)
			}
			continue
		}
		ce, ok := errors.AsType[*CallError](err)
		if !ok || ce.Kind != tc.kind || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("%s: err %v, want kind %s containing %q", tc.op, err, tc.kind, tc.in)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: errors.Is(%v, %v) is false", tc.op, err, tc.want)
		}
	}
	want := []string{"recycle ", "recycle shop/api", "stop x", "reload ", "start shop/"}
	if fmt.Sprint(ctl.calls) != fmt.Sprint(want) {
		t.Errorf("calls %q, want %q", ctl.calls, want)
	}
	st, err := c.Status(ctx)
	if err != nil || st.PID != 42 || st.Apps[0].Processes[0].Port != 1234 {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	ctl := &fakeController{}
	_, path := serve(t, ctl)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	defer hc.CloseIdleConnections()
	get := func(p string) (int, string) {
		resp, err := hc.Get("http://gatehouse" + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d while ready", code)
	}
	ctl.mu.Lock()
	ctl.ready = errors.New("shutting down")
	ctl.mu.Unlock()
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz = %d %q while not ready", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "# metrics") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get("/v1/recycle"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/recycle = %d, want 405 (control calls are POST)", code)
	}
}

func TestListenUnix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "admin.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != SocketMode {
		t.Fatalf("socket file %v %v, want a socket with mode %v", fi, err, SocketMode)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "run", ".gatehouse-admin-*")); len(leftovers) != 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}
	// A live socket is not taken over.
	accepted := make(chan struct{})
	go func() { // ends when ln is closed below
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			c.Close()
		}
	}()
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "answers on it") {
		t.Errorf("second ListenUnix on a live socket: %v, want a refusal", err)
	}
	// A stale one (its server gone, the file left as after a SIGKILL) is replaced.
	ln.Close()
	<-accepted
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("socket file gone after Close, test premise broken: %v", err)
	}
	ln2, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	CloseUnix(ln2, path)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after CloseUnix: %v", err)
	}
	// A regular file in the way is not removed.
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("ListenUnix over a regular file: %v", err)
	}
}

func TestListenTCPLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "nonsense"} {
		if ln, err := ListenTCP(addr); err == nil {
			ln.Close()
			t.Errorf("ListenTCP(%q) accepted a non-loopback address", addr)
		}
	}
	ln, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestDefaultSocket(t *testing.T) {
	if got := DefaultSocket("/run/gh/gatehouse.pid"); got != "/run/gh/gatehouse.sock" {
		t.Errorf("beside the pid file: %q", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/gatehouse:/run/other")
	if got := DefaultSocket(""); got != "/run/gatehouse/gatehouse.sock" {
		t.Errorf("from RUNTIME_DIRECTORY: %q", got)
	}
}
