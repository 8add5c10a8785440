package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"golang.org/x/sys/unix"
)

// leanWriter is the http.ResponseWriter of the lean HTTP/1.x loop. It
// writes HTTP/1.1 responses the way net/http's server does where it
// matters: the header goes out with the first body bytes (or at Flush),
// framed by the Content-Length the handler set, by the whole body's length
// when the handler finishes before anything was flushed (unless the answer
// has trailers), or else chunked with trailers (the "Trailer" field's
// names and http.TrailerPrefix; the Trailer field goes out only with a
// chunked body, and a trailer never as a header field); an HTTP/1.0
// client, which cannot read chunks, gets such a body delimited by the
// connection's close instead (or by its length, when the handler finished
// first), without the trailers, and no 1xx. Date is added when missing;
// Connection: close is sent when the connection will close, Connection:
// keep-alive when an HTTP/1.0 connection stays open. Unlike net/http it
// does not guess a Content-Type. Hijack hands the connection over (an
// upgrade); it then leaves the loop.
//
// Its write buffer is taken from a pool per response and given back at
// finish, so an idle connection holds none. It is used by the connection's
// goroutine, and by a request body reader sending 100 Continue.
type leanWriter struct {
	lc     *leanConn
	header http.Header // reused between requests

	status      int
	wroteHeader bool // the final status is set
	committed   bool // the status line and header are in buf or sent
	headReq     bool // a HEAD request: no body is sent
	http10      bool // an HTTP/1.0 request: no chunks, no 1xx
	hijacked    bool // Hijack took the connection
	closeAfter  bool // the connection closes after this response
	finished    bool // finish ran: the response is complete
	chunked     bool
	// trailerField holds the header's Trailer values, and trailers says
	// that the answer has trailers (the Trailer field or a key with
	// http.TrailerPrefix), as appendFields found them for commit: the
	// Trailer field goes out only with a chunked body, which alone can
	// carry them.
	trailerField []string
	trailers     bool
	cl           int64 // the declared Content-Length, -1 if none
	written      int64 // body bytes accepted
	err          error // a failed write to the client

	// statusText is the final status's reason phrase, "" for the
	// standard one (SetStatusText).
	statusText string

	mu           sync.Mutex // protects continueSent against the body reader
	continueSent bool

	buf *[leanBufSize]byte
	n   int    // bytes in buf
	hb  []byte // the head being assembled (assemble)
}

// leanBufSize is the response buffer: status line, header and the first
// body bytes go out in one write when they fit. leanHeadRoom of it is kept
// in front of the body written before the header is committed, for the
// header itself.
const (
	leanBufSize  = 8 << 10
	leanHeadRoom = 1 << 10
)

var leanBufPool = sync.Pool{New: func() any { return new([leanBufSize]byte) }}

var errBodyTooLong = errors.New("response body longer than its Content-Length")

// reset prepares w for the next response.
func (w *leanWriter) reset(head, closeAfter bool) {
	clear(w.header)
	if w.header == nil {
		w.header = w.lc.takeScratch().header
	} else if sc := w.lc.scratch; len(sc.vals) > 0 {
		clear(sc.vals)
		sc.vals = sc.vals[:0]
	}
	w.status, w.statusText, w.wroteHeader, w.committed = 0, "", false, false
	w.headReq, w.closeAfter, w.chunked = head, closeAfter, false
	w.trailerField, w.trailers = nil, false
	w.http10, w.hijacked, w.finished = false, false, false
	w.cl, w.written, w.err = -1, 0, nil
	w.continueSent = false
	w.n = 0
}

// Header returns the response header map.
func (w *leanWriter) Header() http.Header { return w.header }

// HeaderValues returns n slots for the header's values (see
// pipeline.HeaderValueStore), kept with the header map in the
// connection's request scratch and cleared with it: at the next response,
// or when the scratch goes back to its pool. A panicking handler's scratch
// is not reused (serveOne), nor are the slots of an array that had no room
// left.
func (w *leanWriter) HeaderValues(n int) []string {
	sc := w.lc.scratch
	if sc == nil || w.header == nil {
		return make([]string, n)
	}
	i := len(sc.vals)
	if i+n > cap(sc.vals) {
		// The slots handed out stay with the map that holds them.
		i, sc.vals = 0, make([]string, 0, max(n, 2*cap(sc.vals), 16))
	}
	sc.vals = sc.vals[:i+n]
	return sc.vals[i : i+n : i+n]
}

// WriteHeader sets the status; an informational status (1xx but 101) is
// sent at once with the current header.
func (w *leanWriter) WriteHeader(code int) {
	if w.committed || w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if w.http10 {
			return // RFC 9110 §15.2: never to an HTTP/1.0 client
		}
		w.mu.Lock()
		if code == http.StatusContinue {
			if w.continueSent {
				w.mu.Unlock()
				return
			}
			w.continueSent = true
		}
		w.mu.Unlock()
		w.assemble(func() {
			w.appendStatus(code)
			w.appendFields(false)
			w.appendString("\r\n")
		}, w.send)
		return
	}
	w.status, w.wroteHeader = code, true
}

// sendContinue sends 100 Continue before the request body is read, unless
// the response started or a 100 was sent.
func (w *leanWriter) sendContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.continueSent || w.committed {
		return
	}
	w.continueSent = true
	if err := w.write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
		w.err = err
	}
}

// bodyAllowed reports whether the response carries a body on the wire.
func (w *leanWriter) bodyAllowed() bool {
	return !w.headReq && w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

// Write adds body bytes.
func (w *leanWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.bodyAllowed() {
		if w.headReq {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if !w.committed {
		b := w.buffer()
		if w.n == 0 {
			w.n = leanHeadRoom
		}
		if w.n+len(p) <= leanBufSize-2 { // room for a chunk's CRLF
			w.n += copy(b[w.n:], p)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.commit(false)
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		w.err = errBodyTooLong
		w.closeAfter = true
		return 0, w.err
	}
	w.written += int64(len(p))
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// writeBody frames p and adds it to the buffer, sending as needed.
func (w *leanWriter) writeBody(p []byte) {
	if w.chunked {
		if len(p) == 0 {
			return
		}
		var hdr [18]byte
		h := strconv.AppendInt(hdr[:0], int64(len(p)), 16)
		h = append(h, "\r\n"...)
		w.add(h)
		w.add(p)
		w.add([]byte("\r\n"))
		return
	}
	w.add(p)
}

// add appends p to the buffer, sending the buffer (and a large p
// directly) when it does not fit.
func (w *leanWriter) add(p []byte) {
	b := w.buffer()
	if w.n+len(p) <= leanBufSize {
		w.n += copy(b[w.n:], p)
		return
	}
	w.flushBuf()
	if len(p) >= leanBufSize/2 {
		w.send(p)
		return
	}
	w.n = copy(b[:], p)
}

// commit decides the framing and puts the status line and header in front
// of the buffered body. final: the handler is done, so the buffered body is
// all of it. The fields the framing depends on (Content-Length,
// Connection, Transfer-Encoding, Date) are read in the walk that writes the
// fields (appendFields), and the framing's own lines follow them.
func (w *leanWriter) commit(final bool) {
	w.committed = true
	// A barrier: a 100 Continue written under mu is either out or will not be sent.
	w.mu.Lock()
	w.mu.Unlock() //lint:ignore SA2001 the barrier above
	body := 0
	if w.n > leanHeadRoom {
		body = w.n - leanHeadRoom
	}
	// The head is assembled in a scratch buffer and copied in front of the
	// body when it fits the head room; else the two go out in turn.
	w.assemble(func() {
		w.appendStatus(w.status)
		w.appendFields(true)
		if w.bodyAllowed() && w.cl < 0 {
			switch {
			case final && (!w.trailers || w.http10):
				// All of the body is here. An HTTP/1.1 answer with
				// trailers goes chunked instead, so that they follow
				// the body as trailers; an HTTP/1.0 client, which
				// cannot take them, gets the body without them.
				w.cl = int64(body)
				cl := strconv.Itoa(body)
				w.header["Content-Length"] = []string{cl}
				w.hb = appendField(w.hb, "Content-Length", cl)
			case w.http10:
				w.closeAfter = true // the body ends with the connection
			default:
				w.chunked = true
			}
		}
		if w.cl >= 0 && int64(body) > w.cl {
			body = int(w.cl) // the handler wrote more than it declared
			w.closeAfter = true
		}
		if w.lc.l.lean.isDraining() {
			w.closeAfter = true
		}
		if w.chunked {
			w.appendString("Transfer-Encoding: chunked\r\n")
			for _, v := range w.trailerField {
				if h1.ValidFieldValue(v) {
					w.hb = appendField(w.hb, "Trailer", v)
				}
			}
		}
		switch {
		case w.status == http.StatusSwitchingProtocols:
			// The connection goes on in the protocol the header names.
		case w.closeAfter:
			w.appendString("Connection: close\r\n")
		case w.http10:
			w.appendString("Connection: keep-alive\r\n")
		}
		w.appendString("\r\n")
	}, func(head []byte) { w.place(head, body) })
}

// assemble runs build over a scratch buffer in place of w's and hands
// what it appended to use. The scratch is the free end of w's buffer, two
// bytes past what it holds (place may put a chunk's CRLF there), when at
// least leanHeadRoom is free there: a common head fits, and no second
// buffer is taken from the pool for it. Else it is a buffer from the pool.
// A head larger than its scratch grows on the heap (apps may send up to
// 64 KiB of header).
func (w *leanWriter) assemble(build func(), use func([]byte)) {
	b := w.buffer()
	if at := w.n + 2; leanBufSize-at >= leanHeadRoom {
		w.hb = b[at:at:leanBufSize]
	} else {
		hb := leanBufPool.Get().(*[leanBufSize]byte)
		defer leanBufPool.Put(hb)
		w.hb = hb[:0]
	}
	build()
	head := w.hb
	w.hb = nil
	use(head)
}

// place sends head with the first body bytes (body of them are buffered
// after the head room), framed.
func (w *leanWriter) place(head []byte, body int) {
	b := w.buf
	if body == 0 {
		w.n = 0
		w.add(head)
		return
	}
	start := leanHeadRoom
	if w.chunked {
		var tmp [18]byte
		c := strconv.AppendInt(tmp[:0], int64(body), 16)
		c = append(c, "\r\n"...)
		start -= len(c)
		copy(b[start:], c)
		w.n = leanHeadRoom + body
		w.n += copy(b[w.n:], "\r\n")
	} else {
		w.n = leanHeadRoom + body
	}
	if len(head) <= start {
		start -= len(head)
		copy(b[start:], head)
		w.send(b[start:w.n])
		w.n = 0
		return
	}
	w.send(head)
	w.send(b[start:w.n])
	w.n = 0
}

// isDraining is set while the listener shuts down.
func (s *leanSet) isDraining() bool {
	return s.draining.Load()
}

// appendStatus appends the status line.
func (w *leanWriter) appendStatus(code int) {
	w.appendString("HTTP/1.1 ")
	if 100 <= code && code <= 999 {
		w.hb = append(w.hb, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10), ' ')
	} else {
		var tmp [8]byte
		w.appendBytes(strconv.AppendInt(tmp[:0], int64(code), 10))
		w.appendString(" ")
	}
	if code == w.status && w.statusText != "" {
		w.appendString(w.statusText)
	} else {
		w.appendString(http.StatusText(code))
	}
	w.appendString("\r\n")
}

// SetStatusText sets the reason phrase of the final status line (URL
// Rewrite's statusReason) before the header is written; a text that
// cannot be sent in a status line (controls) is ignored.
func (w *leanWriter) SetStatusText(text string) {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < ' ' && c != '\t' || c == 0x7f {
			return
		}
	}
	w.statusText = text
}

// appendFields appends the header fields (not the trailers). final: the
// fields of the final response, which the walk also reads for commit:
// Transfer-Encoding is removed (the writer frames the body itself), a
// Content-Length sets w.cl (one that is no length is removed), a
// Connection value with close sets w.closeAfter, the Trailer field and
// keys with http.TrailerPrefix set w.trailers (the Trailer field is left
// to commit, which sends it with a chunked body only), and Date is added
// when missing. (An informational response's fields go out as they are.)
// The head is built in a local slice, each line with two copies (name,
// value).
func (w *leanWriter) appendFields(final bool) {
	b, date := w.hb, false
	for k, vs := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = w.trailers || len(vs) > 0
			continue
		}
		if final {
			switch k {
			case "Date":
				date = true
			case "Trailer":
				w.trailerField, w.trailers = vs, true
				continue
			case "Transfer-Encoding":
				delete(w.header, k)
				continue
			case "Content-Length":
				if len(vs) > 0 {
					n, ok := parseLength(vs[0])
					if !ok {
						delete(w.header, k)
						continue
					}
					w.cl = n
				}
			case "Connection":
				for _, v := range vs {
					if h1.HasToken(v, "close") {
						w.closeAfter = true
					}
				}
			}
		}
		for _, v := range vs {
			if h1.ValidFieldValue(v) {
				b = appendField(b, k, v)
			}
		}
	}
	if final && !date {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, '\r', '\n')
	}
	w.hb = b
}

// appendField appends the field line "k: v\r\n" to b.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ':', ' ')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

func (w *leanWriter) appendString(s string) { w.hb = append(w.hb, s...) }

func (w *leanWriter) appendBytes(s []byte) { w.hb = append(w.hb, s...) }

// buffer returns the write buffer, taking one from the pool.
func (w *leanWriter) buffer() *[leanBufSize]byte {
	if w.buf == nil {
		w.buf = leanBufPool.Get().(*[leanBufSize]byte)
		w.n = 0
	}
	return w.buf
}

// flushBuf sends the buffered bytes.
func (w *leanWriter) flushBuf() {
	if w.n > 0 {
		w.send(w.buf[:w.n])
		w.n = 0
	}
}

func (w *leanWriter) send(p []byte) {
	if w.err != nil {
		return
	}
	if err := w.write(p); err != nil {
		w.err = err
		w.closeAfter = true
	}
}

// write writes p to the client under the send timeout: the socket sets
// its deadline only when a write has to wait (SetWriteTimeout); a TLS
// connection, whose writes go through crypto/tls, gets it before each
// write (its write then has that long to go out whole).
func (w *leanWriter) write(p []byte) error {
	if w.lc.sock != nil {
		_, err := w.lc.sock.Write(p)
		return err
	}
	if w.lc.send > 0 {
		if err := w.lc.c.SetWriteDeadline(time.Now().Add(w.lc.send)); err != nil {
			return err
		}
	}
	_, err := w.lc.c.Write(p)
	return err
}

// Flush sends the header and buffered body now.
func (w *leanWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush, reporting a failed write.
func (w *leanWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	w.flushBuf()
	return w.err
}

// splicedBytes counts the body bytes the lean writer moved with
// SpliceBody, so tests can tell that path from the copying one.
var splicedBytes atomic.Int64

// SpliceReady reports whether the next n body bytes can go straight from
// a TCP connection to the client: a cleartext TCP connection (not TLS), a
// body sent as it is (a declared length with room for n, no chunks, not a
// HEAD answer). It first sends what Flush sends.
func (w *leanWriter) SpliceReady(n int64) bool {
	if w.lc.sock == nil || (w.lc.tcp == nil && w.lc.raw == nil) || w.hijacked {
		return false // TLS (sock is the cleartext trackedConn's), or no TCP socket
	}
	if w.FlushError() != nil {
		return false
	}
	return w.bodyAllowed() && !w.chunked && w.cl >= 0 && w.written+n <= w.cl
}

// SpliceBody copies up to n body bytes from src to the client with
// splice(2) (see pipeline.BodySplicer). A failure on the client's side ends the
// response as a failed Write does. The send timeout bounds the client's
// silence during the step (a spliceWatch), not the step.
func (w *leanWriter) SpliceBody(src *net.TCPConn, n int64) (int64, bool, error) {
	if w.lc.tcpConn() == nil {
		// A raw connection that could not move into Go's poller.
		err := errors.New("splice: the client connection is closed")
		w.err, w.closeAfter = err, true
		return 0, true, err
	}
	var sw *spliceWatch
	if w.lc.send > 0 {
		sw = watchSplice(w.lc.tcp, w.lc.send)
	}
	m, err := w.lc.tcp.ReadFrom(&io.LimitedReader{R: src, N: n})
	w.written += m
	splicedBytes.Add(m)
	client := err != nil && w.clientBroken()
	if sw != nil {
		if derr := sw.stop(); derr != nil && err == nil {
			err, client = derr, true
		}
	}
	if err == nil {
		return m, false, nil
	}
	if client {
		w.err, w.closeAfter = err, true
	}
	return m, client, err
}

// spliceWatch applies the send timeout to a splice step, whose writes to
// the client happen inside (*net.TCPConn).ReadFrom where no deadline can
// be renewed: every timeout it looks at how many bytes the client has
// acknowledged (TCP_INFO), and when that has not grown it sets the
// client's write deadline to now, which ends the step as the client's
// failure. Its timer is its only goroutine, ended by stop.
type spliceWatch struct {
	c       *net.TCPConn
	timeout time.Duration
	t       *time.Timer

	mu    sync.Mutex // guards the fields below against the timer
	acked uint64
	done  bool
}

func watchSplice(c *net.TCPConn, timeout time.Duration) *spliceWatch {
	sw := &spliceWatch{c: c, timeout: timeout, acked: bytesAcked(c)}
	sw.mu.Lock()
	sw.t = time.AfterFunc(timeout, sw.check)
	sw.mu.Unlock()
	return sw
}

// check runs on the timer: it renews the wait after progress and ends the
// step otherwise.
func (sw *spliceWatch) check() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.done {
		return
	}
	if a := bytesAcked(sw.c); a != sw.acked {
		sw.acked = a
		sw.t.Reset(sw.timeout)
		return
	}
	_ = sw.c.SetWriteDeadline(time.Now()) // the step fails with ErrDeadlineExceeded
}

// stop ends the watch and clears the write deadline it may have set.
func (sw *spliceWatch) stop() error {
	sw.mu.Lock()
	sw.done = true
	sw.t.Stop()
	sw.mu.Unlock()
	return sw.c.SetWriteDeadline(time.Time{})
}

// bytesAcked returns how many bytes the peer of c has acknowledged (0 when
// it cannot be read: then the watch sees no progress).
func bytesAcked(c *net.TCPConn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var n uint64
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = info.Bytes_acked
		}
	})
	return n
}

// clientBroken reports, after a splice failed, whether the client's side
// is what failed: its write deadline passed (a Write of nothing checks it
// and sends nothing) or the connection can no longer send (reset, or
// closed by a failed write).
func (w *leanWriter) clientBroken() bool {
	if _, err := w.lc.tcp.Write(nil); err != nil {
		return true
	}
	rc, err := w.lc.tcp.SyscallConn()
	if err != nil {
		return true
	}
	open := false
	err = rc.Control(func(fd uintptr) {
		info, ierr := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		open = ierr == nil && (info.State == tcpEstablished || info.State == tcpCloseWait)
	})
	return err != nil || !open
}

// The TCP states (include/net/tcp_states.h) in which a socket still sends.
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)

// SetReadDeadline sets the client connection's read deadline (the body
// timeout).
func (w *leanWriter) SetReadDeadline(t time.Time) error {
	err := w.lc.c.SetReadDeadline(t)
	w.lc.readDL.Store(true) // after the deadline, so a clear never misses it
	return err
}

// SetWriteDeadline sets the client connection's write deadline.
func (w *leanWriter) SetWriteDeadline(t time.Time) error { return w.lc.c.SetWriteDeadline(t) }

// Hijack hands the client connection to the caller (an upgrade, such as a
// WebSocket): a final status the handler set (101) goes out first with its
// header, as net/http does; the bytes the client sent after the request
// head come first from the connection; its deadlines are cleared. The
// connection leaves the lean loop's set at once (a drain does not wait for
// it) and the loop once the handler returns; closing it is the caller's.
func (w *leanWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.committed {
		w.commit(false)
	}
	w.flushBuf()
	if w.err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", w.err)
	}
	if w.lc.raw != nil {
		// The hijacker's reads and writes wait in Go's poller.
		if _, err := w.lc.raw.tcpConn(); err != nil {
			return nil, nil, fmt.Errorf("hijack: %w", err)
		}
	}
	w.hijacked, w.closeAfter = true, true
	w.lc.l.lean.remove(w.lc)
	w.abandon()
	in := &w.lc.in
	c := &prefixConn{Conn: w.lc.c, prefix: bytes.Clone(in.Buffered())}
	in.Discard(len(c.prefix))
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// finish is Finish, for the loop.
func (w *leanWriter) finish() error { return w.Finish() }

// Finish completes the response after the handler returned: the header if
// not yet sent, the last chunk and trailers, and everything buffered. The
// write buffer goes back to the pool. It returns the first write error;
// called again, it only returns that error. serve calls it (see
// answerFinisher) before it reports the request; the loop's own call after
// serve then only returns the error.
func (w *leanWriter) Finish() error {
	if w.finished {
		return w.err
	}
	w.finished = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked {
		w.add([]byte("0\r\n"))
		w.appendTrailers()
		w.add([]byte("\r\n"))
	} else if w.cl >= 0 && w.written < w.cl && w.bodyAllowed() {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	w.flushBuf()
	w.abandon()
	return w.err
}

// appendTrailers adds the trailer fields: values of the names the Trailer
// field announced, and http.TrailerPrefix keys.
func (w *leanWriter) appendTrailers() {
	for _, list := range w.header["Trailer"] {
		for list != "" {
			var k string
			k, list, _ = strings.Cut(list, ",")
			k = http.CanonicalHeaderKey(h1.TrimOWS(k))
			for _, v := range w.header[k] {
				w.addField(k, v)
			}
		}
	}
	for k, vs := range w.header {
		if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vs {
				w.addField(t, v)
			}
		}
	}
}

func (w *leanWriter) addField(k, v string) {
	if !h1.ValidFieldValue(v) || k == "" {
		return
	}
	w.add([]byte(k + ": " + v + "\r\n"))
}

// abandon gives the write buffer back without sending it.
func (w *leanWriter) abandon() {
	if w.buf != nil {
		leanBufPool.Put(w.buf)
		w.buf, w.n = nil, 0
	}
}

// parseLength parses a Content-Length value: ok when
// strconv.ParseInt(v, 10, 64) takes it and it is not negative. Up to 18
// plain digits (which cannot overflow an int64) are read here, in a few
// instructions a digit; anything else goes to strconv.ParseInt.
func parseLength(v string) (n int64, ok bool) {
	if len(v) == 0 || len(v) > 18 {
		return parseLengthSlow(v)
	}
	for i := 0; i < len(v); i++ {
		d := v[i] - '0'
		if d > 9 {
			return parseLengthSlow(v)
		}
		n = n*10 + int64(d)
	}
	return n, true
}

func parseLengthSlow(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

// httpDate returns the current time in the Date field's format, formatted
// once per second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, 29), http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]
