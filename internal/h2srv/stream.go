package h2srv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/growstack"
	"github.com/gatehouse/gatehouse/internal/h2conn"
	"github.com/gatehouse/gatehouse/internal/reqtarget"
)

// Request is the head of a stream's request, checked as RFC 9113 §8 asks.
type Request struct {
	Method    string
	Scheme    string // "" for a CONNECT that is not extended
	Authority string // :authority, or the Host field when it is absent
	// Path is :path, the path and query ("" for CONNECT), with its bytes
	// beyond ASCII and '#' percent-encoded (reqtarget.Escape).
	Path     string
	Protocol string // :protocol of an extended CONNECT (RFC 8441), else ""
	// Fields holds the regular fields with canonical names; cookie fields
	// are joined into one (RFC 9113 §8.2.3) and Host is dropped (it is in
	// Authority).
	Fields http.Header
	// ContentLength is the request's content-length, 0 when the HEADERS
	// ended the stream, -1 when unknown.
	ContentLength int64
	// Trailer holds the trailer names the request declared (in its
	// "Trailer" field), with their values once Read returned io.EOF;
	// nil when it declared none.
	Trailer http.Header
}

// Stream is one request and its response: the handler reads the request
// body from it (Read) and writes the response to it (it is an
// http.ResponseWriter).
type Stream struct {
	Request
	c      *Conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	cond   sync.Cond // L is &c.mu

	// Protected by c.mu.
	sendWin int64 // the client's stream window for what is sent
	// recv holds the request body received, and its window.
	recv      h2conn.StreamRecv
	bodyLeft  int64 // what the request's content-length still announces; -1: none
	remoteEnd bool  // the client ended its side
	localEnd  bool  // END_STREAM sent
	rst       bool  // reset, by the client or here
	clientRst bool  // reset by the client
	// finalSent is set when the final response header is written (under
	// the write lock): Read, perhaps on a goroutine other than the
	// handler's, sends no 100 Continue after it.
	finalSent bool
	// gotTrailer holds the request trailers received, until the
	// handler's Read copies those declared into Trailer.
	gotTrailer http.Header
	err        error
	readDL     time.Time
	rdTimer    *time.Timer
	want100    bool // the client expects 100 Continue before it sends the body

	// The handler's.
	header      http.Header
	status      int  // the final status, 0 until WriteHeader
	headerSent  bool // the final HEADERS went out
	wrote       int64
	declared    int64 // the response's content-length, -1: none
	bodyAllowed bool
	closeConn   bool // the response said "Connection: close"
	finished    bool // Finish ran; finishErr is its error
	finishErr   error
}

// Context ends when the client resets the stream, the connection ends,
// or the handler returns.
func (st *Stream) Context() context.Context { return st.ctx }

// ID is the stream's id.
func (st *Stream) ID() uint32 { return st.id }

// failLocked records err as the stream's failure (the first counts) and
// wakes its waits. Called with c.mu held.
func (st *Stream) failLocked(err error) {
	if st.err == nil {
		st.err = err
	}
	st.cond.Broadcast()
	if st.cancel != nil {
		st.cancel()
	}
}

// errMalformed is a request that RFC 9113 §8.1.1 calls malformed.
type errMalformed string

func (e errMalformed) Error() string { return "malformed HTTP/2 request: " + string(e) }

// parseRequest reads and checks the request head of f.
func parseRequest(f *http2.MetaHeadersFrame, req *Request) error {
	var status bool
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			req.Method = hf.Value
		case ":scheme":
			req.Scheme = hf.Value
		case ":authority":
			req.Authority = hf.Value
		case ":path":
			req.Path = hf.Value
		case ":protocol":
			req.Protocol = hf.Value
		case ":status":
			status = true
		}
	}
	switch {
	case status:
		return errMalformed(":status in a request")
	case req.Method == "":
		return errMalformed("no :method")
	case req.Method == http.MethodConnect && req.Protocol == "":
		if hasPseudo(f, ":scheme") || hasPseudo(f, ":path") || req.Authority == "" {
			return errMalformed("CONNECT with :scheme or :path, or without :authority")
		}
	case req.Protocol != "" && req.Method != http.MethodConnect:
		return errMalformed(":protocol without CONNECT")
	case req.Scheme == "" || req.Path == "":
		return errMalformed("no :scheme or :path, or an empty one")
	}
	if req.Path != "" {
		p, ok := reqtarget.Escape(req.Path)
		if !ok {
			return errMalformed(":path with a space or control byte")
		}
		req.Path = p
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	vals := make([]string, len(regular))
	var host string
	var cookies int
	req.ContentLength = -1
	for i, hf := range regular {
		switch {
		case h2conn.ConnectionSpecific(hf.Name):
			return errMalformed("connection-specific field " + hf.Name)
		case hf.Name == "te" && hf.Value != "trailers":
			return errMalformed("te other than trailers")
		case hf.Name == "host":
			if host != "" && host != hf.Value {
				return errMalformed("two Host fields")
			}
			host = hf.Value
			continue
		case hf.Name == "content-length":
			n, err := strconv.ParseUint(hf.Value, 10, 63)
			if err != nil || req.ContentLength >= 0 && int64(n) != req.ContentLength {
				return errMalformed("content-length " + strconv.Quote(hf.Value))
			}
			if req.ContentLength >= 0 {
				continue // the same length again: one is kept
			}
			req.ContentLength = int64(n)
		case hf.Name == "cookie":
			cookies++
		}
		h2conn.AddValue(h, vals, i, requestNames.Canonical(hf.Name), hf.Value)
	}
	if host != "" {
		if req.Authority == "" {
			req.Authority = host
		} else if host != req.Authority {
			return errMalformed("Host differs from :authority")
		}
	}
	if req.Authority == "" {
		// RFC 9113 §8.3.1 for the http and https schemes, the only ones
		// served (as HTTP/1.1 refuses a request without Host).
		return errMalformed("neither :authority nor Host")
	}
	if cookies > 1 {
		h["Cookie"] = []string{strings.Join(h["Cookie"], "; ")}
	}
	req.Fields = h
	if f.StreamEnded() {
		if req.ContentLength > 0 {
			return errMalformed("content-length without a body")
		}
		req.ContentLength = 0
	}
	if names := h["Trailer"]; len(names) > 0 {
		req.Trailer = http.Header{}
		for _, v := range names {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					req.Trailer[http.CanonicalHeaderKey(name)] = nil
				}
			}
		}
	}
	return nil
}

// hasPseudo reports whether f has the pseudo-header field name, empty or
// not.
func hasPseudo(f *http2.MetaHeadersFrame, name string) bool {
	for _, hf := range f.PseudoFields() {
		if hf.Name == name {
			return true
		}
	}
	return false
}

// requestNames are the field names requests commonly carry.
var requestNames = h2conn.NewCanonicalNames("Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
	"Cache-Control", "Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date", "Expect",
	"Grpc-Accept-Encoding", "Grpc-Encoding", "Grpc-Timeout", "Grpc-Message-Type", "If-Match",
	"If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Origin", "Pragma",
	"Range", "Referer", "Te", "Trailer", "User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Requested-With", "X-User-Agent", "X-Grpc-Web", "Sec-Websocket-Version",
	"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Sec-Websocket-Key", "Upgrade-Insecure-Requests")

// handleHeaders takes a HEADERS frame: a new stream's request, or the
// trailers of an open one.
func (c *Conn) handleHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return h2conn.Errorf(http2.ErrCodeProtocol, "HEADERS on even stream %d", id)
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		return c.trailersLocked(st, f)
	}
	if id <= c.maxID {
		e, recent := c.recentLocked(id)
		c.mu.Unlock()
		switch {
		case recent && e.reset:
			return c.streamError(id, http2.ErrCodeStreamClosed, errors.New("HEADERS on a reset stream"))
		case recent:
			return h2conn.Errorf(http2.ErrCodeStreamClosed, "HEADERS on closed stream %d", id)
		}
		return h2conn.Errorf(http2.ErrCodeProtocol, "HEADERS on stream %d, below the last one opened", id)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.mu.Unlock()
		return c.refuse(id, http2.ErrCodeProtocol, errors.New("stream depends on itself"))
	}
	c.maxID = id
	var refusal error
	switch {
	case c.goAway || c.closed:
		refusal = errors.New("the connection is going away")
	case uint32(c.open) >= c.cfg.MaxConcurrentStreams:
		refusal = errors.New("beyond SETTINGS_MAX_CONCURRENT_STREAMS")
	case uint32(c.running) >= c.cfg.MaxConcurrentStreams:
		// The client stays within its streams by resetting them while
		// their handlers still run.
		c.refused++
		if c.refused > calmFactor*int(c.cfg.MaxConcurrentStreams) {
			c.mu.Unlock()
			return h2conn.Errorf(http2.ErrCodeEnhanceYourCalm, "too many streams reset while their handlers ran")
		}
		refusal = errors.New("too many handlers in flight")
	}
	c.mu.Unlock()
	if refusal != nil {
		return c.refuse(id, http2.ErrCodeRefusedStream, refusal)
	}
	if f.Truncated {
		return c.tooLarge(id, f.StreamEnded())
	}
	st := &Stream{c: c, id: id}
	if err := parseRequest(f, &st.Request); err != nil {
		return c.refuse(id, http2.ErrCodeProtocol, err)
	}
	st.cond.L = &c.mu
	// A HEAD request's content is held to its content-length as any
	// other's: RFC 9113 §8.1.1 exempts the responses to HEAD, not the
	// requests.
	st.bodyLeft = st.ContentLength
	st.declared = -1
	st.ctx, st.cancel = context.WithCancel(c.ctx)
	st.want100 = st.ContentLength != 0 && strings.EqualFold(st.Fields.Get("Expect"), "100-continue")
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		st.cancel()
		return errConnClosed
	}
	st.sendWin, st.recv = c.peer.InitWin, h2conn.NewStreamRecv(int64(c.cfg.StreamWindow))
	st.remoteEnd = f.StreamEnded()
	c.streams[id] = st
	c.open++
	c.running++
	c.setIdle(false)
	c.wg.Add(1)
	c.mu.Unlock()
	go st.run()
	return nil
}

// trailersLocked takes the request trailers of st, which end it. Called
// with c.mu held; unlocks it.
func (c *Conn) trailersLocked(st *Stream, f *http2.MetaHeadersFrame) error {
	var serr error
	code := http2.ErrCodeProtocol
	switch {
	case st.rst && !st.clientRst:
		c.mu.Unlock()
		return nil // reset here: ignored
	case st.remoteEnd && st.localEnd:
		// Closed, though its handler has not returned yet.
		c.mu.Unlock()
		return h2conn.Errorf(http2.ErrCodeStreamClosed, "HEADERS on closed stream %d", st.id)
	case st.remoteEnd || st.clientRst:
		serr, code = errors.New("HEADERS after the end of the request"), http2.ErrCodeStreamClosed
	case !f.StreamEnded():
		serr = errMalformed("trailers without END_STREAM")
	case len(f.PseudoFields()) > 0:
		serr = errMalformed("pseudo-header fields in trailers")
	case f.Truncated:
		serr = errMalformed("trailers too large")
	case st.bodyLeft > 0:
		serr = errMalformed("request body shorter than its content-length")
	}
	if serr == nil {
		for _, hf := range f.RegularFields() {
			k := requestNames.Canonical(hf.Name)
			if h2conn.ConnectionSpecific(hf.Name) || hf.Name == "te" || !httpguts.ValidTrailerHeader(k) {
				serr = errMalformed("forbidden trailer field " + hf.Name)
				break
			}
			if st.Trailer != nil {
				if st.gotTrailer == nil {
					st.gotTrailer = http.Header{}
				}
				st.gotTrailer[k] = append(st.gotTrailer[k], hf.Value)
			}
		}
	}
	if serr == nil {
		c.endRemoteLocked(st)
	}
	c.mu.Unlock()
	if serr != nil {
		return c.streamError(st.id, code, serr)
	}
	return nil
}

// tooLarge answers a request whose header list is over
// MaxHeaderListSize with 431, without a handler.
func (c *Conn) tooLarge(id uint32, ended bool) error {
	c.log.Debug("HTTP/2 request header list too large", "remote", c.nc.RemoteAddr().String(), "stream", id)
	if !ended {
		c.mu.Lock()
		c.endedLocked(endedStream{id: id, reset: true, here: true}) // its RST_STREAM follows the 431
		c.mu.Unlock()
	}
	return c.write(func() error {
		c.hbuf.Reset()
		c.mu.Lock()
		c.syncTableLocked()
		c.mu.Unlock()
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "431"})
		if err := c.writeHeaderBlock(id, true); err != nil {
			return err
		}
		if !ended {
			return c.fr.WriteRSTStream(id, http2.ErrCodeNo)
		}
		return nil
	})
}

// run is the stream's goroutine: it runs the handler, then ends the
// response and the stream.
func (st *Stream) run() {
	growstack.Grow()
	c := st.c
	defer c.wg.Done()
	aborted := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				aborted = true
				if v != http.ErrAbortHandler {
					c.log.Error("panic serving HTTP/2 stream", "remote", c.nc.RemoteAddr().String(), "panic", v, "stack", string(debug.Stack()))
				}
			}
		}()
		c.h(st)
	}()
	if !aborted {
		if err := st.Finish(); err != nil {
			aborted = true
		}
	}
	st.finish(aborted)
	if st.closeConn {
		c.Shutdown()
	}
}

// finish ends the stream once its handler returned: a stream the client
// has not ended is reset (NO_ERROR after a whole response,
// INTERNAL_ERROR after an aborted one), its unread data's room is given
// back, and a connection going away closes after its last stream.
func (st *Stream) finish(aborted bool) {
	c := st.c
	c.mu.Lock()
	var code http2.ErrCode
	send := !st.rst && (!st.remoteEnd || !st.localEnd) && !c.closed
	if send {
		code = http2.ErrCodeNo
		if aborted || !st.localEnd {
			code = http2.ErrCodeInternal
		}
	}
	c.endedLocked(endedStream{id: st.id, reset: st.rst || send, here: st.rst && !st.clientRst || send})
	if !st.rst {
		st.rst = true
		if !(st.remoteEnd && st.localEnd) {
			c.open--
		}
	}
	st.failLocked(errConnClosed)
	if st.rdTimer != nil {
		st.rdTimer.Stop()
	}
	delete(c.streams, st.id)
	c.running--
	if uint32(c.running) < c.cfg.MaxConcurrentStreams {
		c.refused = 0 // the handlers are not saturated (see calmFactor)
	}
	st.recv.Discard(&c.recv)
	inc := c.recv.Increment()
	c.maybeIdleLocked()
	closeNow := c.goAway && c.running == 0
	c.mu.Unlock()
	if send || inc > 0 {
		_ = c.write(func() error {
			if send {
				if err := c.fr.WriteRSTStream(st.id, code); err != nil {
					return err
				}
			}
			if inc > 0 {
				return c.fr.WriteWindowUpdate(0, uint32(inc))
			}
			return nil
		})
	}
	if closeNow {
		c.closeDrained()
	}
}

// Read reads the request body, returning io.EOF once the client ended it
// (Trailer is filled then), and gives the client back room in its
// windows as the body is read.
func (st *Stream) Read(p []byte) (int, error) {
	c := st.c
	c.mu.Lock()
	if st.want100 && st.recv.Len() == 0 && !st.remoteEnd && st.err == nil {
		st.want100 = false
		c.mu.Unlock()
		if err := st.writeInformational(http.StatusContinue, nil); err != nil {
			return 0, err
		}
		c.mu.Lock()
	}
	for st.recv.Len() == 0 && !st.remoteEnd && st.err == nil {
		if !st.readDL.IsZero() && !time.Now().Before(st.readDL) {
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		st.cond.Wait()
	}
	if st.recv.Len() == 0 {
		defer c.mu.Unlock()
		if st.remoteEnd {
			st.copyTrailer()
			return 0, io.EOF
		}
		return 0, st.err
	}
	n, sinc := st.recv.Read(&c.recv, p, !st.remoteEnd && !st.rst)
	cinc := c.recv.Increment()
	c.mu.Unlock()
	if sinc > 0 || cinc > 0 {
		_ = c.write(func() error { return h2conn.WriteWindowUpdates(c.fr, st.id, cinc, sinc) })
	}
	return n, nil
}

// SetReadDeadline bounds the Reads of the request body (zero: none); a
// Read waiting then returns os.ErrDeadlineExceeded.
func (st *Stream) SetReadDeadline(t time.Time) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st.readDL = t
	if t.IsZero() {
		if st.rdTimer != nil {
			st.rdTimer.Stop()
		}
		return nil
	}
	d := time.Until(t)
	if st.rdTimer == nil {
		st.rdTimer = time.AfterFunc(d, st.wake)
	} else {
		st.rdTimer.Reset(d)
	}
	return nil
}

// wake wakes the stream's waits (its read deadline passed).
func (st *Stream) wake() {
	st.c.mu.Lock()
	st.cond.Broadcast()
	st.c.mu.Unlock()
}

// SetWriteDeadline is not supported: the connection's send timeout
// bounds the writes of all its streams.
func (st *Stream) SetWriteDeadline(time.Time) error { return http.ErrNotSupported }

// Header returns the response header map; fields with names
// http.TrailerPrefix and the names declared in its "Trailer" field are
// sent as trailers.
func (st *Stream) Header() http.Header {
	if st.header == nil {
		st.header = make(http.Header, 8)
	}
	return st.header
}

// WriteHeader sets the response status; an informational one (1xx but
// 101, which HTTP/2 has not) is sent at once.
func (st *Stream) WriteHeader(code int) {
	if st.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		if code != http.StatusSwitchingProtocols {
			_ = st.writeInformational(code, st.header)
		}
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	st.status = code
	// A handler that wants the connection closed after its answer (as it
	// would end an HTTP/1.1 connection) has the connection shut down
	// gracefully once the stream ended, as Go's server does.
	st.closeConn = httpguts.HeaderValuesContainsToken(st.header["Connection"], "close")
	st.bodyAllowed = st.Method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified
	if v := st.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			st.declared = n
		} else {
			st.header.Del("Content-Length")
		}
	}
}

// errTooLong is a response body longer than its content-length.
var errTooLong = errors.New("response body longer than its Content-Length")

// Write sends body bytes, with the response header first if it has not
// gone out.
func (st *Stream) Write(p []byte) (int, error) {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if !st.bodyAllowed {
		if st.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if st.declared >= 0 && st.wrote+int64(len(p)) > st.declared {
		return 0, errTooLong
	}
	if !st.headerSent {
		if err := st.writeHeaders(false); err != nil {
			return 0, err
		}
	}
	n, err := st.writeData(p, false)
	st.wrote += int64(n)
	return n, err
}

// Flush sends the response header if it has not gone out; body bytes are
// not held.
func (st *Stream) Flush() { _ = st.FlushError() }

// FlushError is Flush, with the failure to write.
func (st *Stream) FlushError() error {
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	if st.headerSent {
		return nil
	}
	return st.writeHeaders(false)
}

// Finish ends the response: its header if it has not gone out, then the
// trailers or the end of the stream. The server does so when the handler
// returns; a handler that wants the end sent first (to time its answer to
// its last byte) calls it last. A second call only returns the first's
// error.
func (st *Stream) Finish() error {
	if !st.finished {
		st.finished, st.finishErr = true, st.endResponse()
	}
	return st.finishErr
}

// endResponse is Finish's work.
func (st *Stream) endResponse() error {
	c := st.c
	c.mu.Lock()
	done := st.rst || st.localEnd
	c.mu.Unlock()
	if done {
		return nil
	}
	if st.status == 0 {
		st.WriteHeader(http.StatusOK)
	}
	trailers := st.trailerNames()
	if !st.headerSent {
		if len(trailers) == 0 {
			return st.writeHeaders(true)
		}
		if err := st.writeHeaders(false); err != nil {
			return err
		}
	}
	if len(trailers) > 0 {
		return st.writeTrailers(trailers)
	}
	_, err := st.writeData(nil, true)
	return err
}

// trailerNames returns the names of the trailer fields the handler set,
// as st.header holds them.
func (st *Stream) trailerNames() []string {
	var names []string
	for _, v := range st.header["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if len(st.header[name]) > 0 {
				names = append(names, name)
			}
		}
	}
	for k, vs := range st.header {
		if strings.HasPrefix(k, http.TrailerPrefix) && len(vs) > 0 {
			names = append(names, k)
		}
	}
	return names
}

// stateError is why a stream takes no more frames: the write that found
// it wrote nothing, and the connection is fine.
type stateError struct{ error }

func (e stateError) Unwrap() error { return e.error }

// errEnded is a write after the response ended.
var errEnded = errors.New("HTTP/2 response already ended")

// checkLocked returns why nothing more may be written on st, nil if it
// may. Called with c.mu held.
func (st *Stream) checkLocked() error {
	switch {
	case st.c.closed:
		return stateError{errConnClosed}
	case st.rst:
		if st.err != nil {
			return stateError{st.err}
		}
		return stateError{errStreamReset}
	case st.localEnd:
		return stateError{errEnded}
	}
	return nil
}

// writeInformational sends a 1xx response with the fields of h, unless
// the final header went out.
func (st *Stream) writeInformational(code int, h http.Header) error {
	c := st.c
	return c.write(func() error {
		c.mu.Lock()
		err := st.checkLocked()
		final := st.finalSent
		c.syncTableLocked()
		c.mu.Unlock()
		if err != nil || final {
			return err
		}
		c.hbuf.Reset()
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(code)})
		st.encodeFields(h, false)
		return c.writeHeaderBlock(st.id, false)
	})
}

// writeHeaders sends the final response header, ending the stream with
// end.
func (st *Stream) writeHeaders(end bool) error {
	c := st.c
	st.headerSent = true
	err := c.write(func() error {
		c.mu.Lock()
		err := st.checkLocked()
		c.syncTableLocked()
		if err == nil {
			st.finalSent = true
			if end {
				st.endLocalLocked()
			}
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		c.hbuf.Reset()
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(st.status)})
		st.encodeFields(st.header, true)
		if end && st.declared < 0 && st.bodyAllowed {
			_ = c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: "0"})
		}
		return c.writeHeaderBlock(st.id, end)
	})
	return err
}

// endLocalLocked records the end of the response's side of st. Called
// with c.mu held.
func (st *Stream) endLocalLocked() {
	st.localEnd = true
	if st.remoteEnd && !st.rst {
		st.c.open--
		st.c.maybeIdleLocked()
	}
}

// statusText returns code as :status; common codes cost no allocation.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 304:
		return "304"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// encodeFields encodes the fields of h into c.hbuf, but for the
// connection-specific ones (never sent in HTTP/2) and the trailers
// (http.TrailerPrefix). final adds Date when h has none. Called with the
// write lock held.
func (st *Stream) encodeFields(h http.Header, final bool) {
	enc := st.c.henc
	for k, vs := range h {
		lk := responseNames.Lower(k)
		if h2conn.ConnectionSpecific(lk) || strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		if lk == "te" {
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			_ = enc.WriteField(hpack.HeaderField{Name: lk, Value: v})
		}
	}
	if final && h["Date"] == nil {
		_ = enc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	}
}

// writeTrailers ends the stream with the trailer fields names of
// st.header.
func (st *Stream) writeTrailers(names []string) error {
	c := st.c
	return c.write(func() error {
		c.mu.Lock()
		err := st.checkLocked()
		c.syncTableLocked()
		if err == nil {
			st.endLocalLocked()
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		c.hbuf.Reset()
		for _, k := range names {
			name := responseNames.Lower(strings.TrimPrefix(k, http.TrailerPrefix))
			if h2conn.ConnectionSpecific(name) || name == "te" {
				continue
			}
			for _, v := range st.header[k] {
				if httpguts.ValidHeaderFieldValue(v) {
					_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
				}
			}
		}
		return c.writeHeaderBlock(st.id, true)
	})
}

// writeData sends p as DATA frames, each within the client's windows and
// frame size, waiting for room as the client gives it; end ends the
// stream with the last one (an empty one for an empty p).
func (st *Stream) writeData(p []byte, end bool) (int, error) {
	c := st.c
	written := 0
	for first := true; first || len(p) > 0; first = false {
		c.mu.Lock()
		var timer *time.Timer
		var deadline time.Time
		for len(p) > 0 && (st.sendWin <= 0 || c.sendConn <= 0) && st.checkLocked() == nil {
			if c.cfg.SendTimeout > 0 {
				// A client that reads every frame but gives no window
				// stalls the stream as surely as one that reads nothing:
				// the send timeout bounds the wait for room too.
				if timer == nil {
					deadline = time.Now().Add(c.cfg.SendTimeout)
					timer = time.AfterFunc(c.cfg.SendTimeout, st.wake)
				} else if !time.Now().Before(deadline) {
					c.mu.Unlock()
					return written, st.windowTimeout()
				}
			}
			st.cond.Wait()
		}
		if timer != nil {
			timer.Stop()
		}
		if err := st.checkLocked(); err != nil {
			c.mu.Unlock()
			return written, err
		}
		n := min(int64(len(p)), int64(c.peer.MaxFrame), st.sendWin, c.sendConn)
		st.sendWin -= n
		c.sendConn -= n
		last := end && n == int64(len(p))
		c.mu.Unlock()
		chunk := p[:n]
		err := c.write(func() error {
			// Checked again under the write lock: the stream may have been
			// reset (its RST_STREAM written) while this write waited for
			// it, and no DATA may follow that RST_STREAM.
			c.mu.Lock()
			err := st.checkLocked()
			if err == nil && last {
				st.endLocalLocked()
			}
			c.mu.Unlock()
			if err != nil {
				return err
			}
			return c.writeData(st.id, last, chunk)
		})
		if err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// errWindowTimeout is the failure of a stream whose client gave no room
// in its flow-control windows for the send timeout.
var errWindowTimeout = fmt.Errorf("HTTP/2 client gave no flow-control window in time: %w", os.ErrDeadlineExceeded)

// windowTimeout resets st, whose writes waited for the client's window
// for the send timeout (RST_STREAM INTERNAL_ERROR, as Go's server resets
// a stream past its write deadline), and returns errWindowTimeout. The
// log line goes out before the RST_STREAM, so a client that sees the
// reset finds it logged.
func (st *Stream) windowTimeout() error {
	c := st.c
	c.log.Info("send timeout: the client gave no HTTP/2 flow-control window in time; stream reset",
		"remote", c.nc.RemoteAddr().String(), "stream", st.id, "timeout", c.cfg.SendTimeout)
	if err := st.resetHere(http2.ErrCodeInternal, errWindowTimeout); err != nil {
		return err
	}
	return errWindowTimeout
}

// resetHere resets st before its handler returned: its Reads and writes
// fail with why, and RST_STREAM code goes out unless the stream was
// reset already or the connection closed. The error is the write's.
func (st *Stream) resetHere(code http2.ErrCode, why error) error {
	c := st.c
	c.mu.Lock()
	send := !st.rst && !c.closed
	c.resetLocked(st, why)
	c.mu.Unlock()
	if !send {
		return nil
	}
	return c.write(func() error { return c.fr.WriteRSTStream(st.id, code) })
}

// responseNames are the field names responses commonly carry.
var responseNames = h2conn.NewLowerNames("Accept-Ranges", "Access-Control-Allow-Origin", "Alt-Svc", "Cache-Control",
	"Content-Encoding", "Content-Length", "Content-Type", "Date", "Etag", "Expires", "Grpc-Encoding",
	"Grpc-Accept-Encoding", "Grpc-Message", "Grpc-Status", "Last-Modified", "Location", "Server",
	"Set-Cookie", "Strict-Transport-Security", "Trailer", "Vary", "X-Content-Type-Options",
	"X-Powered-By", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te")

// dateCache holds the Date field's value for the current second.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	s   string
}

// httpDate returns the current time as the Date field has it.
func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateValue{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

// errBodyClosed is the failure of a stream whose body the handler closed.
var errBodyClosed = errors.New("HTTP/2 request body closed")

// Close ends the stream before its handler returns (a tunnel that went
// idle): it is reset (RST_STREAM CANCEL), its Reads and writes fail.
func (st *Stream) Close() error { return st.resetHere(http2.ErrCodeCancel, errBodyClosed) }

// copyTrailer gives the request's declared trailer fields the values
// received, once, on the handler's goroutine (Trailer is the handler's
// from the start: the read loop does not write it). Called with c.mu held.
func (st *Stream) copyTrailer() {
	for k, vs := range st.gotTrailer {
		if _, ok := st.Trailer[k]; ok {
			st.Trailer[k] = vs
		}
	}
	st.gotTrailer = nil
}
