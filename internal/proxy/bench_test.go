package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// benchBackend returns one fixed lease; Release is a no-op.
type benchBackend struct{ addr string }

func (b benchBackend) Acquire(ctx context.Context) (*upstream.Lease, error) {
	return upstream.NewLease(b.addr, testToken, 1, nil, nil), nil
}

func benchApp() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello World")
	}))
}

func runClients(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	defer measureCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkDirect is the baseline: client straight to the app.
func BenchmarkDirect(b *testing.B) {
	app := benchApp()
	defer app.Close()
	runClients(b, app.URL+"/hello?x=1")
}

// BenchmarkProxy sends the same small GET through a Handler. Compare its
// ns/op and allocs/op with BenchmarkDirect: the difference is the proxy's
// own cost (plus one more hop's HTTP parsing on each side).
func BenchmarkProxy(b *testing.B) {
	app := benchApp()
	defer app.Close()
	h := &Handler{Backend: benchBackend{app.Listener.Addr().String()}, RequestTimeout: 2 * 60e9}
	defer h.CloseIdleConnections()
	front := httptest.NewServer(forwardHandler{h: h})
	defer front.Close()
	runClients(b, front.URL+"/hello?x=1")
}

// BenchmarkNaive is a plain httputil.ReverseProxy with default settings in
// front of the same app: the floor Handler's own features are measured from.
func BenchmarkNaive(b *testing.B) {
	app := benchApp()
	defer app.Close()
	u, _ := url.Parse(app.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	rp.Transport = tr
	front := httptest.NewServer(rp)
	defer front.Close()
	runClients(b, front.URL+"/hello?x=1")
}

// cpuTime returns the user+system CPU time this process has used so far.
// measureCPU reports allocations and resets the timer; the function it
// returns stops the timer and reports the process's CPU time per op
// (cpu-ns/op). Wall time per op depends on how the client, proxy and app
// share the cores; CPU time per op is what the proxy is held to.
func measureCPU(b *testing.B) func() {
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
