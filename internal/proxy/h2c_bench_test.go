package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/pipeline"
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
	defer measureCPU(b)()
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

// unaryWriter is the client side of a benchmarked exchange: a response
// writer that keeps the status and counts the body, reused across calls.
type unaryWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *unaryWriter) Header() http.Header         { return w.h }
func (w *unaryWriter) WriteHeader(code int)        { w.code = code }
func (w *unaryWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *unaryWriter) Flush()                      {}

// BenchmarkH2CUnaryForward is one unary gRPC call forwarded by
// Handler.Forward to a real h2c app on loopback, with no front door: the
// app side of an h2c call alone (its request written, the response and
// trailers copied), so that its allocations per call can be watched.
// The request body is complete when the call starts, as a unary call's
// one message usually is. The app answers from its frames alone
// (unaryFramesApp), so that what is measured is the forwarding.
func BenchmarkH2CUnaryForward(b *testing.B) {
	addr := unaryFramesApp(b)
	h := &Handler{Backend: benchBackend{addr}, RequestTimeout: 2 * 60e9, H2C: true}
	defer h.CloseIdleConnections()
	msg := []byte{0, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd'}
	defer measureCPU(b)()
	// A client's deadline makes every call's grpc-timeout (the time left)
	// a new value.
	timeouts := make([]string, 1000)
	for i := range timeouts {
		timeouts[i] = strconv.Itoa(20e6-i) + "u"
	}
	b.RunParallel(func(pb *testing.PB) {
		hdr := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"},
			"Grpc-Timeout": {""}, "User-Agent": {"grpc-go/1.85.0"}}
		i := 0
		w := &unaryWriter{h: http.Header{}}
		body := bytes.NewReader(msg)
		for pb.Next() {
			clear(w.h)
			w.code, w.n = 0, 0
			hdr["Grpc-Timeout"][0] = timeouts[i%len(timeouts)]
			i++
			body.Reset(msg)
			pr := &pipeline.Request{Method: http.MethodPost, Path: "/svc/Call", Host: "bench", Proto: "HTTP/2.0",
				RemoteAddr: "127.0.0.1:40000", Header: pipeline.HTTPHeader(hdr), ContentLength: -1}
			h.Forward(context.Background(), w, pr, body)
			if w.code != 200 || w.n != 10 || w.h.Get(http.TrailerPrefix+"Grpc-Status") != "0" {
				b.Errorf("status %d, %d body bytes, header %v", w.code, w.n, w.h)
				return
			}
		}
	})
}

// unaryFramesApp starts an h2c app, on x/net/http2's Framer, that answers
// every stream once its request ended: a response header, 10 bytes of
// body and a trailer (grpc-status 0), written together, as a gRPC
// server answers a unary call. It gives back the room of what it received
// at once. The listener and its connections close when b ends.
func unaryFramesApp(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveUnaryFrames(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// serveUnaryFrames is unaryFramesApp's connection.
func serveUnaryFrames(c net.Conn) {
	br := bufio.NewReaderSize(c, 32<<10)
	bw := bufio.NewWriterSize(c, 32<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil {
		return
	}
	fr := http2.NewFramer(bw, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	if fr.WriteSettings() != nil || bw.Flush() != nil {
		return
	}
	body := []byte{0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	answer := func(id uint32) error {
		hbuf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true}); err != nil {
			return err
		}
		if err := fr.WriteData(id, false, body); err != nil {
			return err
		}
		hbuf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: true})
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				err = answer(f.StreamID)
			}
		case *http2.DataFrame:
			if n := f.Length; n > 0 {
				err = fr.WriteWindowUpdate(0, n)
				if err == nil && !f.StreamEnded() {
					err = fr.WriteWindowUpdate(f.StreamID, n)
				}
			}
			if err == nil && f.StreamEnded() {
				err = answer(f.StreamID)
			}
		}
		if err == nil && br.Buffered() == 0 {
			err = bw.Flush()
		}
		if err != nil {
			return
		}
	}
}
