package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// h2cBenchApp is a unary "RPC" over h2c: it reads the request and answers
// a small body and a trailer, as a gRPC server does.
func h2cBenchApp() *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = w.Write([]byte{0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'})
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	return s
}

// runH2CClients sends unary calls over h2c (one connection, many
// streams) and reports CPU time per call.
func runH2CClients(b *testing.B, url string) {
	tr := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	msg := []byte{0, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd'}
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	defer func() {
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(msg))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Trailer.Get("Grpc-Status") != "0" {
				b.Errorf("status %d, trailers %v", res.StatusCode, res.Trailer)
				return
			}
		}
	})
}

// BenchmarkH2CDirect is the baseline for h2c apps: client straight to the
// app.
func BenchmarkH2CDirect(b *testing.B) {
	app := h2cBenchApp()
	defer app.Close()
	runH2CClients(b, app.URL+"/svc/Call")
}

// BenchmarkH2CProxy sends the same calls through a Handler speaking h2c
// to the app (the front end takes h2c too).
func BenchmarkH2CProxy(b *testing.B) {
	app := h2cBenchApp()
	defer app.Close()
	h := &Handler{Backend: benchBackend{app.Listener.Addr().String()}, RequestTimeout: 2 * 60e9, H2C: true}
	defer h.CloseIdleConnections()
	front := httptest.NewUnstartedServer(forwardHandler{h: h})
	front.Config.Protocols = new(http.Protocols)
	front.Config.Protocols.SetUnencryptedHTTP2(true)
	front.Start()
	defer front.Close()
	runH2CClients(b, front.URL+"/svc/Call")
}
