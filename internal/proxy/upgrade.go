package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// switchProtocols completes a WebSocket upgrade the app accepted: ex.res
// is its 101 head, ex.conn the connection it came on. The client's
// connection is hijacked, the 101 (with the app's fields by the response
// rules, and Connection: Upgrade) is written to it, and bytes are relayed
// in both directions until either side closes or ex.ctx ends; then both
// connections are closed. requestTimeout does not apply to the relay: an
// upgraded connection may stay silent (the front door bounds it with its
// own idle timeout for upgraded connections).
func (ex *exchange) switchProtocols() {
	defer ex.drop()
	up := ""
	for _, f := range ex.res.fields {
		if strings.EqualFold(f.name, "Upgrade") {
			up = f.value
			break
		}
	}
	if !strings.EqualFold(up, ex.in.upgrade) {
		ex.h.fail(ex, &BackendError{PID: ex.lease.PID,
			Err: malformed("app switched to protocol %q when %q was requested", trunc(up), ex.in.upgrade)}, ex.lease.PID)
		return
	}
	if ex.in.wsKey != "" {
		ex.acceptStream()
		return
	}
	client, brw, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		ex.h.fail(ex, fmt.Errorf("hijack the client connection to switch protocols: %w", err), ex.lease.PID)
		return
	}
	defer client.Close()
	h := ex.w.Header()
	for _, f := range ex.res.fields {
		if ex.res.forwarded(f.name) {
			k := http.CanonicalHeaderKey(f.name)
			h[k] = append(h[k], f.value)
		}
	}
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{up}
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	app := ex.conn.nc
	if itc := ex.conn.itc; itc != nil {
		app = itc.Conn // the socket without requestTimeout's deadlines
	}
	_ = app.SetDeadline(time.Time{})
	relay(client, brw.Reader, app, ex.conn.br)
}

// relay copies between the client's upgraded connection and the app's
// (its connection, or an extended CONNECT stream) until either side ends,
// then closes both. clientBuf and appBuf hold what was read from each side
// beyond the request and response heads; it is sent first. appBuf may be
// nil. It returns when both directions have stopped.
func relay(client net.Conn, clientBuf *bufio.Reader, app io.ReadWriteCloser, appBuf *bufio.Reader) {
	done := make(chan struct{})
	go func() { // client → app; ends when the client closes or app is closed
		defer close(done)
		defer app.Close()
		if n := clientBuf.Buffered(); n > 0 {
			p, _ := clientBuf.Peek(n)
			if _, err := app.Write(p); err != nil {
				return
			}
		}
		relayCopy(app, client)
	}()
	func() { // app → client
		defer client.Close()
		if n := buffered(appBuf); n > 0 {
			p, _ := appBuf.Peek(n)
			if _, err := client.Write(p); err != nil {
				return
			}
		}
		relayCopy(client, app)
	}()
	<-done
}

// buffered returns how many bytes b holds; 0 for a nil b.
func buffered(b *bufio.Reader) int {
	if b == nil {
		return 0
	}
	return b.Buffered()
}

// quietBufferSize is the read buffer of an upgraded connection that
// carries little: what each of its two blocked reads holds while it waits.
const quietBufferSize = 4 << 10

// quietBuffers holds the quiet buffers (array pointers, so Put does not
// allocate).
var quietBuffers = sync.Pool{New: func() any { return new([quietBufferSize]byte) }}

// relayCopy copies from src to dst until either fails or src ends. It
// reads into a small buffer while the connection is quiet, so thousands of
// idle WebSockets hold 4 KiB per direction, and into a pooled 64 KiB one
// (one system call per 64 KiB each way) from the first read that fills
// the small buffer until a read brings less than a quarter of the large
// one. Every read and write is a system call that waits in the network
// poller when a side is not ready, so a streaming connection's goroutines
// take turns with every other connection's; they need no yield of their
// own.
func relayCopy(dst io.Writer, src io.Reader) {
	quiet := quietBuffers.Get().(*[quietBufferSize]byte)
	defer quietBuffers.Put(quiet)
	var large *[bufferSize]byte
	defer func() {
		if large != nil {
			buffers.Put(large)
		}
	}()
	for {
		p := quiet[:]
		if large != nil {
			p = large[:]
		}
		n, err := src.Read(p)
		if n > 0 {
			if _, werr := dst.Write(p[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		switch {
		case large == nil && n == len(p):
			large = buffers.Get().(*[bufferSize]byte)
		case large != nil && n < len(p)/4:
			buffers.Put(large)
			large = nil
		}
	}
}
