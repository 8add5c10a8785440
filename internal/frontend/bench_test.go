package frontend_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// proxyApp is an App that forwards with a proxy.Handler, as app.App does.
type proxyApp struct{ h *proxy.Handler }

func (a proxyApp) Current() pipeline.App  { return a }
func (a proxyApp) Chain() *pipeline.Chain { return nil }
func (a proxyApp) Forward(ctx context.Context, w http.ResponseWriter, r *pipeline.Request, body io.Reader) {
	a.h.Forward(ctx, w, r, body)
}
func (a proxyApp) Close(context.Context) error { a.h.CloseIdleConnections(); return nil }

type fixedBackend string

func (b fixedBackend) Acquire(context.Context) (*upstream.Lease, error) {
	return upstream.NewLease(string(b), "token", 1, nil, nil), nil
}

// BenchmarkFrontDoor sends small GETs through the whole front door
// (routing, stages, access-log observers, proxy) to a Go app, over the lean
// HTTP/1.1 loop, over net/http's HTTP/1.1 server (the lean loop off), and
// over the HTTP/2 server (h2c with prior knowledge, handed over by the lean
// loop; the path HTTP/2 over TLS shares).
// cpu-ns/op is the process's CPU time per request (client and app
// included: compare the cases, not the absolute).
func BenchmarkFrontDoor(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello World")
	}))
	defer back.Close()
	for _, way := range []string{"lean", "net-http", "h2c"} {
		b.Run(way, func(b *testing.B) {
			frontend.SetLeanHTTP1(way != "net-http") // h2c comes in through the lean loop, as in production
			defer frontend.SetLeanHTTP1(true)
			e := newEnv(b, "app")
			protocols := ""
			if way == "h2c" {
				protocols = "protocols: {h2c: true}"
			}
			cfg := e.config(b, protocols+`
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`)
			open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
				return proxyApp{&proxy.Handler{Backend: fixedBackend(back.Listener.Addr().String()), RequestTimeout: 2 * time.Minute}}, nil
			}
			s, err := frontend.New(cfg, open, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			benchGets(b, s, way == "h2c")
		})
	}
}

// benchGets runs s and sends small GETs to its "http" binding from parallel
// clients until b.N (over HTTP/2 with prior knowledge when h2c is set, all
// on one connection), reporting cpu-ns/op (the process's CPU time per
// request, client and app included).
func benchGets(b *testing.B, s *frontend.Server, h2c bool) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Listening()
	url := "http://" + s.Addrs()["http"].String() + "/hello?x=1"
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkNewConnPerRequest sends each small GET on a new connection
// with "Connection: close" through the lean loop (as wrk's close workload
// does), from a raw client that makes few allocations of its own: allocs/op
// is mostly the front door's cost of accepting, serving one request and
// closing (the app's side, an httptest server, is kept alive).
func BenchmarkNewConnPerRequest(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello World")
	}))
	defer back.Close()
	e := newEnv(b, "app")
	cfg := e.config(b, `
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`)
	open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
		return proxyApp{&proxy.Handler{Backend: fixedBackend(back.Listener.Addr().String()), RequestTimeout: 2 * time.Minute}}, nil
	}
	s, err := frontend.New(cfg, open, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Listening()
	addr := s.Addrs()["http"].String()
	req := []byte("GET /hello HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = c.Write(req)
			for err == nil {
				_, err = c.Read(buf)
			}
			c.Close()
			if err != io.EOF {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
