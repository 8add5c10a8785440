package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// interopBins are grpc-go's interop server and client, built once per run
// of the package from the module cache at the version go.mod names (a tool
// of the module), beside the gatehouse binary (TestMain removes them).
var interopBins = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(filepath.Dir(gatehouseBin), "grpc-interop")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"google.golang.org/grpc/interop/server", "google.golang.org/grpc/interop/client")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the gRPC interop binaries: %v\n%s", err, out)
	}
	return dir, nil
})

// interopDir returns the folder holding the built interop "server" and
// "client".
func interopDir(t *testing.T) string {
	t.Helper()
	dir, err := interopBins()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// interopCases are the interop cases that need no Google credentials.
var interopCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
	"timeout_on_sleeping_server", "cancel_after_begin", "cancel_after_first_response",
	"status_code_and_message", "special_status_message", "custom_metadata",
	"unimplemented_method", "unimplemented_service",
}

// grpcApp writes an app folder whose web.config runs the interop server
// over h2c on ASPNETCORE_PORT.
func grpcApp(t *testing.T, bins string) string {
	t.Helper()
	return writeApp(t, fmt.Sprintf(`processPath=%q arguments="--port=%%ASPNETCORE_PORT%%"`, filepath.Join(bins, "server")),
		`<handlerSettings><handlerSetting name="protocol" value="h2c" /></handlerSettings>`)
}

// startGRPCSite serves app at / of a site with an h2c-capable http binding
// and an https binding; it returns gatehouse and the two addresses.
func startGRPCSite(t *testing.T, p *pki, app string) (g *gh, httpAddr, httpsAddr string) {
	t.Helper()
	return startGRPCSiteAt(t, p, app, "/")
}

// startGRPCSiteAt is startGRPCSite with the app at path; extra are more
// arguments for gatehouse serve.
func startGRPCSiteAt(t *testing.T, p *pki, app, path string, extra ...string) (g *gh, httpAddr, httpsAddr string) {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`protocols: {h2c: true}
shutdownTimeout: 5s
sites:
  - name: grpc
    bindings:
      - {scheme: http, address: 127.0.0.1, port: 0}
      - {scheme: https, address: 127.0.0.1, port: 0, certificateFile: %s, keyFile: %s}
    applications:
      - {path: %s, dir: %s}
`, p.certFile, p.keyFile, path, app))
	// Registered before start, so it runs after gatehouse has stopped.
	t.Cleanup(func() {
		waitFor(t, 5*time.Second, "no app process left", func() bool { return len(processesIn(app)) == 0 })
	})
	g = start(t, "", append([]string{"serve", "--config", cfgFile}, extra...)...)
	return g, g.listenerAddr(t, "http"), g.listenerAddr(t, "https")
}

// interopClient runs one interop case against addr, over TLS when tls is
// set (trusting p's CA), else over h2c. It returns the client's output and
// whether the case passed.
func interopClient(t *testing.T, bins string, p *pki, addr string, tls bool, testCase string) (string, bool) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"--server_host=" + host, "--server_port=" + port, "--test_case=" + testCase}
	if tls {
		args = append(args, "--use_tls=true", "--use_test_ca=true", "--ca_file="+p.caFile,
			"--server_host_override=a.example.test")
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bins, "client"), args...).CombinedOutput()
	return string(out), err == nil
}

// TestGRPCInterop runs grpc-go's interop client against its interop server
// hosted as an h2c app by the real binary, over TLS + HTTP/2 and over h2c
// to the front door: every case that needs no Google credentials.
func TestGRPCInterop(t *testing.T) {
	t.Parallel()
	bins := interopDir(t)
	p := newPKI(t, t.TempDir())
	app := grpcApp(t, bins)
	out, err := exec.Command(gatehouseBin, "check", app).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^protocol +h2c +\(web\.config\)$`).Match(out) {
		t.Errorf("gatehouse check %s: %v, want the protocol h2c from web.config:\n%s", app, err, out)
	}
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("sites:\n  - name: s\n    bindings: [{scheme: http, port: 0}]\n"+
		"    applications: [{path: /api, dir: %s, protocol: h2c}]\n", app))
	out, err = exec.Command(gatehouseBin, "check", cfgFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "application protocol s/api: h2c") {
		t.Errorf("gatehouse check %s: %v, want the application's protocol:\n%s", cfgFile, err, out)
	}
	g, httpAddr, httpsAddr := startGRPCSite(t, p, app)
	passed := 0
	for _, tr := range []struct {
		name string
		addr string
		tls  bool
	}{{"TLS", httpsAddr, true}, {"h2c", httpAddr, false}} {
		for _, c := range interopCases {
			out, ok := interopClient(t, bins, p, tr.addr, tr.tls, c)
			if !ok {
				t.Errorf("%s %s failed:\n%s", tr.name, c, out)
				continue
			}
			passed++
		}
	}
	t.Logf("%d of %d interop cases passed", passed, 2*len(interopCases))
	if strings.Contains(g.logs.String(), "<!DOCTYPE") {
		t.Error("an HTML page in the log")
	}
}

// TestGRPCUnavailable checks that a real gRPC client gets UNAVAILABLE, not
// a page, while the app is offline (app_offline.htm) and when it fails to
// start, and UNIMPLEMENTED for a path no application takes.
func TestGRPCUnavailable(t *testing.T) {
	t.Parallel()
	bins := interopDir(t)
	p := newPKI(t, t.TempDir())

	t.Run("offline", func(t *testing.T) {
		app := grpcApp(t, bins)
		writeFile(t, filepath.Join(app, "app_offline.htm"), "<html>down for maintenance</html>")
		_, httpAddr, httpsAddr := startGRPCSite(t, p, app)
		for _, tr := range []struct {
			addr string
			tls  bool
		}{{httpsAddr, true}, {httpAddr, false}} {
			out, ok := interopClient(t, bins, p, tr.addr, tr.tls, "empty_unary")
			if ok || !strings.Contains(out, "code = Unavailable") || !strings.Contains(out, "HTTP Error 503") ||
				strings.Contains(out, "html") {
				t.Errorf("tls=%v: offline app: ok=%v, output:\n%s\nwant UNAVAILABLE naming HTTP Error 503, no HTML", tr.tls, ok, out)
			}
		}
		if err := os.Remove(filepath.Join(app, "app_offline.htm")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the app to serve once app_offline.htm is gone", func() bool {
			_, ok := interopClient(t, bins, p, httpAddr, false, "empty_unary")
			return ok
		})
	})

	t.Run("no application", func(t *testing.T) {
		_, httpAddr, _ := startGRPCSiteAt(t, p, grpcApp(t, bins), "/elsewhere")
		out, ok := interopClient(t, bins, p, httpAddr, false, "empty_unary")
		if ok || !strings.Contains(out, "code = Unimplemented") || !strings.Contains(out, "HTTP Error 404") ||
			strings.Contains(out, "html") {
			t.Errorf("no application: ok=%v, output:\n%s\nwant UNIMPLEMENTED naming HTTP Error 404, no HTML", ok, out)
		}
	})

	t.Run("start failure", func(t *testing.T) {
		app := writeApp(t, `processPath="/bin/false" startupTimeLimit="5"`,
			`<handlerSettings><handlerSetting name="protocol" value="h2c" /></handlerSettings>`)
		g, httpAddr, _ := startGRPCSite(t, p, app)
		out, ok := interopClient(t, bins, p, httpAddr, false, "empty_unary")
		if ok || !strings.Contains(out, "code = Unavailable") || !strings.Contains(out, "HTTP Error 502.5") ||
			strings.Contains(out, "html") {
			t.Errorf("app failing to start: ok=%v, output:\n%s\nwant UNAVAILABLE naming HTTP Error 502.5, no HTML", ok, out)
		}
		waitFor(t, 5*time.Second, "the failed request in the log", func() bool {
			rec := g.logs.find("request failed")
			return rec != nil && rec["status"] == "502.5"
		})
	})
}

// TestGRPCRecycleLosesNothing runs gRPC calls from several clients at once
// while the app is recycled twice: every call succeeds, those in flight on
// the old process included (it finishes them before it is stopped).
func TestGRPCRecycleLosesNothing(t *testing.T) {
	t.Parallel()
	bins := interopDir(t)
	p := newPKI(t, t.TempDir())
	pidFile := filepath.Join(t.TempDir(), "gh.pid")
	_, httpAddr, _ := startGRPCSiteAt(t, p, grpcApp(t, bins), "/", "--pid-file", pidFile)
	if out, ok := interopClient(t, bins, p, httpAddr, false, "empty_unary"); !ok {
		t.Fatalf("first call failed:\n%s", out)
	}
	var (
		wg         sync.WaitGroup
		calls      atomic.Int32
		mu         sync.Mutex
		failures   []string
		stop       = make(chan struct{})
		stopped    bool
		stopCalled = func() {
			if !stopped {
				stopped = true
				close(stop)
			}
		}
	)
	defer func() { stopCalled(); wg.Wait() }()
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, ok := interopClient(t, bins, p, httpAddr, false, "large_unary")
				calls.Add(1)
				if !ok {
					mu.Lock()
					failures = append(failures, out)
					mu.Unlock()
				}
			}
		})
	}
	for range 2 {
		if code, out := ghctl(t, "recycle", "--pid-file", pidFile); code != 0 || !strings.Contains(out, "done") {
			t.Fatalf("gatehouse recycle: exit %d\n%s", code, out)
		}
	}
	stopCalled()
	wg.Wait()
	t.Logf("%d calls during two recycles", calls.Load())
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the recycles; the first:\n%s", len(failures), calls.Load(), failures[0])
	}
}

// TestGRPCKill9 kills the app (SIGKILL) while it holds no call: the next
// call succeeds, on a new process, although a gRPC call is a POST (a
// refused connection was certainly not processed, so it is sent again).
func TestGRPCKill9(t *testing.T) {
	t.Parallel()
	bins := interopDir(t)
	p := newPKI(t, t.TempDir())
	app := grpcApp(t, bins)
	_, httpAddr, _ := startGRPCSite(t, p, app)
	if out, ok := interopClient(t, bins, p, httpAddr, false, "empty_unary"); !ok {
		t.Fatalf("first call failed:\n%s", out)
	}
	pids := processesIn(app)
	if len(pids) != 1 {
		t.Fatalf("app processes %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// At once: the supervisor may not have seen the exit yet.
	if out, ok := interopClient(t, bins, p, httpAddr, false, "large_unary"); !ok {
		t.Errorf("the first call after kill -9 failed:\n%s", out)
	}
	if now := processesIn(app); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("app processes %v after the call, want one new one (killed: %d)", now, pids[0])
	}
}
