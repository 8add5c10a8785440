package h2srv

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/batchconn"
)

// TestIdleConnHoldsNoReadBuffer: a connection whose last stream ended and
// that waits for the client's next frame holds no read buffer (one is
// taken only while read bytes wait to be consumed).
func TestIdleConnHoldsNoReadBuffer(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	idle := make(chan bool, 4)
	cfg.OnIdle = func(i bool) { idle <- i }
	var hc *Conn
	p := serveHooked(t, cfg, hello, func(c *Conn) { hc = c })
	p.headers(1, true)
	if r := p.response(1); r.status != "200" {
		t.Fatalf("response %+v", r)
	}
	for _, want := range []bool{true, false, true} { // the start, the stream, its end
		if got := <-idle; got != want {
			t.Fatalf("OnIdle(%v), want OnIdle(%v)", got, want)
		}
	}
	// The read loop consumed the last bytes before it handled the HEADERS
	// under mu: taking mu orders that before this check.
	hc.mu.Lock()
	held := hc.rd.buf != nil
	hc.mu.Unlock()
	if held {
		t.Fatal("the idle connection holds its read buffer")
	}
}

// BenchmarkIdleConn opens b.N HTTP/2 connections over loopback TCP, each
// served as the front door serves one (its writes gathered by batchconn),
// makes one GET on each (answered with a small body, or with 32 KiB: DATA
// frames of the largest default size) and leaves them all open with no
// stream: what an idle connection holds. It reports, per connection, the
// growth of the Go heap in use, of the goroutine stacks and of the
// process's resident memory (VmRSS). Run it with a fixed count, e.g.
// -benchtime=500x; with IDLE_HEAP_PROFILE set to a file name it also
// writes a heap profile of the connections (every allocation sampled)
// there, its name ending with the case's.
//
// The client side is raw bytes on the benchmark's goroutine, one
// connection at a time: it adds only its sockets to the figures.
func BenchmarkIdleConn(b *testing.B) {
	profile := os.Getenv("IDLE_HEAP_PROFILE")
	if profile != "" {
		runtime.MemProfileRate = 1
	}
	body := make([]byte, 32<<10)
	upload := func(st *Stream) {
		_, _ = io.Copy(io.Discard, st)
		hello(st)
	}
	for _, tc := range []struct {
		name   string
		h      Handler
		upload int // the request body's length, in DATA frames of 16 KiB
	}{
		{"small", hello, 0},
		{"32KiB", func(st *Stream) { _, _ = st.Write(body) }, 0},
		{"upload32KiB", upload, len(body)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			name := ""
			if profile != "" {
				name = profile + "." + tc.name
			}
			benchIdleConn(b, tc.h, idleClientRequest(tc.upload), name)
		})
	}
}

// benchIdleConn is BenchmarkIdleConn with handler h and the client's
// request (idleClientRequest), writing the heap profile to profile unless
// it is "".
func benchIdleConn(b *testing.B, h Handler, request []byte, profile string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	idle := make(chan struct{}, 1024)
	cfg.OnIdle = func(i bool) {
		if i {
			idle <- struct{}{}
		}
	}
	served := make(chan *Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(served)
				return
			}
			cfg := cfg
			cfg.Socket = socket(b, c)
			hc := NewConn(batchconn.New(c), cfg, h)
			served <- hc
			go hc.Serve()
		}
	}()
	var conns []net.Conn
	var hcs []*Conn
	defer func() {
		for _, hc := range hcs {
			hc.Close()
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	// Warm up: the first connection's one-time costs (the hpack tables'
	// package state, the pools) do not count.
	warm, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	hcs = append(hcs, <-served)
	conns = append(conns, warm)
	if err := idleClientGet(warm, request, buf); err != nil {
		b.Fatal(err)
	}
	<-idle // the start
	<-idle // the GET's stream ended
	heap0, stack0, rss0 := idleMemory(b)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		hcs = append(hcs, <-served)
		if err := idleClientGet(c, request, buf); err != nil {
			b.Fatal(err)
		}
		<-idle
		<-idle
	}
	b.StopTimer()
	heap1, stack1, rss1 := idleMemory(b)
	n := float64(b.N)
	b.ReportMetric(float64(heap1-heap0)/n, "heap-B/conn")
	b.ReportMetric(float64(stack1-stack0)/n, "stack-B/conn")
	b.ReportMetric(float64(rss1-rss0)/n, "rss-B/conn")
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// idleMemory returns the Go heap in use, the goroutine stacks in use and
// the process's VmRSS, in bytes, after a garbage collection.
func idleMemory(b *testing.B) (heap, stack, rss uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			rss = kib << 10
		}
	}
	return ms.HeapInuse, ms.StackInuse, rss
}

// idleClientRequest returns what a client sends to make one request: the
// preface, an empty SETTINGS and the request's HEADERS (stream 1), a GET,
// or a POST with a body of upload bytes in DATA frames of 16 KiB.
func idleClientRequest(upload int) []byte {
	method := "GET"
	if upload > 0 {
		method = "POST"
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":authority", "localhost"}, {":path", "/"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: upload == 0, EndHeaders: true})
	for upload > 0 {
		n := min(upload, 16<<10)
		upload -= n
		_ = fr.WriteData(1, upload == 0, make([]byte, n))
	}
	return out.Bytes()
}

// idleClientGet sends request on c, acknowledges the server's SETTINGS
// and reads frames until the response on stream 1 ended.
func idleClientGet(c net.Conn, request, buf []byte) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(request); err != nil {
		return err
	}
	for {
		hdr := buf[:9]
		if _, err := io.ReadFull(c, hdr); err != nil {
			return err
		}
		length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := http2.FrameType(hdr[3]), http2.Flags(hdr[4])
		id := binary.BigEndian.Uint32(hdr[5:9]) & (1<<31 - 1)
		if _, err := io.ReadFull(c, buf[:length]); err != nil {
			return err
		}
		switch {
		case typ == http2.FrameSettings && !flags.Has(http2.FlagSettingsAck):
			if _, err := c.Write([]byte{0, 0, 0, byte(http2.FrameSettings), byte(http2.FlagSettingsAck), 0, 0, 0, 0}); err != nil {
				return err
			}
		case id == 1 && (typ == http2.FrameHeaders || typ == http2.FrameData) && flags.Has(http2.FlagDataEndStream):
			return nil
		case typ == http2.FrameRSTStream || typ == http2.FrameGoAway:
			return io.ErrUnexpectedEOF
		}
	}
}
