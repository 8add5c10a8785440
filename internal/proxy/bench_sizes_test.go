package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// The workloads of bench/run.sh beside the tiny GET of bench_test.go: large
// responses, a large upload and a new connection per request, each through
// a Handler and straight to the app, so that the difference is the proxy's.
// Run with: go test -run '^$' -bench Workload -benchmem ./internal/proxy/

// sizedApp answers GET /big?n=N with N bytes and reads POST bodies to the
// end, answering how many bytes they had (as internal/testapp does).
func sizedApp() *httptest.Server {
	chunk := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 1260)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	}))
}

type workload struct {
	name      string
	method    string
	path      string
	body      int // request body bytes
	bytes     int // response or request bytes, for MB/s
	keepAlive bool
}

var workloads = []workload{
	{name: "64KiB", method: "GET", path: "/big?n=65536", bytes: 64 << 10, keepAlive: true},
	{name: "1MiB", method: "GET", path: "/big?n=1048576", bytes: 1 << 20, keepAlive: true},
	{name: "upload-1MiB", method: "POST", path: "/discard", body: 1 << 20, bytes: 1 << 20, keepAlive: true},
	{name: "new-conn", method: "GET", path: "/big?n=16", keepAlive: false},
}

// BenchmarkWorkload runs each workload through a Handler ("proxy") and
// straight to the app ("direct").
func BenchmarkWorkload(b *testing.B) {
	for _, w := range workloads {
		b.Run(w.name+"/direct", func(b *testing.B) {
			app := sizedApp()
			defer app.Close()
			runWorkload(b, app.URL, w)
		})
		b.Run(w.name+"/proxy", func(b *testing.B) {
			app := sizedApp()
			defer app.Close()
			h := &Handler{Backend: benchBackend{app.Listener.Addr().String()}, RequestTimeout: 2 * 60e9}
			defer h.CloseIdleConnections()
			front := httptest.NewServer(forwardHandler{h: h})
			defer front.Close()
			runWorkload(b, front.URL, w)
		})
	}
}

// runWorkload sends w's request b.N times from parallel clients and reports
// allocations, MB/s and the CPU time of the whole process (client, proxy
// and app) per request.
func runWorkload(b *testing.B, base string, w workload) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true, DisableKeepAlives: !w.keepAlive}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := bytes.Repeat([]byte("a"), w.body)
	b.SetBytes(int64(w.bytes))
	defer measureCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(w.method, base+w.path, bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}
