package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// respond copies the app's response (ex.res, body still on ex.conn) to the
// client: header fields by the response rules, the status, the body as it
// arrives (flushed before any read that would wait for the app), then the
// trailers. It releases the connection. A failure after the header was
// written aborts the client's response: panic(http.ErrAbortHandler), as
// ReverseProxy does, so the client sees a cut connection rather than a
// complete-looking truncated body.
func (ex *exchange) respond() {
	res := &ex.res
	ex.copyHeader()
	ex.flusher, _ = ex.w.(http.Flusher)
	ex.w.WriteHeader(res.status)
	ex.dirty = true
	if !bodyAllowed(ex.in.method, res.status) {
		ex.release(true)
		return
	}
	var err error
	switch {
	case res.chunked:
		err = ex.copyChunked()
	case res.contentLength >= 0:
		err = ex.copyN(res.contentLength)
	default:
		res.close = true
		err = ex.copyN(-1)
	}
	if err != nil {
		ex.abort(err)
		return
	}
	ex.release(true)
}

// copyHeader puts the app's response header fields that the response
// rules pass into the client's response header. It is a function of its
// own so that its locals are off the stack by the time respond writes the
// header and the body: every request's goroutine carries respond's frame
// below those writes, and a larger one makes the runtime copy more HTTP/2
// handler stacks to a bigger size.
func (ex *exchange) copyHeader() {
	res := &ex.res
	h := ex.w.Header()
	// One array holds the values of every field copied (each key's first
	// value is a one-element slice of it): the writer's, kept with its
	// header map, when it has one, else one allocation. Sized by all the
	// fields, not by a first pass over the rules, as the fields the rules
	// drop are few.
	var vals []string
	if s, ok := ex.w.(pipeline.HeaderValueStore); ok {
		vals = s.HeaderValues(len(res.fields))
	} else {
		vals = make([]string, len(res.fields))
	}
	if len(h) > 0 || !ex.copyFields(h, vals, true) {
		ex.copyFields(h, vals, false)
	}
	if ex.h.ForwardResponseConnectionHeader {
		switch {
		case res.close && res.status != http.StatusSwitchingProtocols:
			h["Connection"] = connectionClose
		case len(res.connection) > 0:
			h["Connection"] = append([]string(nil), res.connection...)
		}
	}
	if len(res.trailer) > 0 && res.chunked {
		names := make([]string, 0, len(res.trailer))
		for _, t := range res.trailer {
			// A name the header carries too (Server-Timing) is not
			// announced: every writer sends the header's values of the
			// names the Trailer field announces as trailers again (and
			// quic-go's leaves them out of the header). The trailer still
			// goes out, under http.TrailerPrefix (copyTrailers).
			if k := http.CanonicalHeaderKey(t); trailerAllowed(k) && res.forwarded(k) && len(h[k]) == 0 {
				names = append(names, k)
			}
		}
		if len(names) > 0 {
			h["Trailer"] = []string{strings.Join(names, ", ")}
		}
	}
}

// copyFields puts the app's fields that the response rules pass into h,
// their values into vals (each key's first value is a one-element slice of
// it). With fresh, h is empty and each key is stored without a lookup
// first, as most answers name each field once: a key that turns out to be
// in h already (a repeated field, Set-Cookie) ends the copy, with h emptied
// again and false returned, for the copy without fresh, which looks each
// key up and appends a repeated field's values.
func (ex *exchange) copyFields(h http.Header, vals []string, fresh bool) bool {
	res := &ex.res
	i := 0
	cl := false
	for _, f := range res.fields {
		// res.forwarded, written out: it is not inlined, and this runs
		// for every field of every answer.
		if !responseFieldRule(f.name) || len(res.connection) != 0 && connectionListed(res.connection, f.name) ||
			(res.chunked && fieldIs(f.name, "Content-Length")) {
			continue
		}
		// As the app wrote it (X-XSS-Protection), but the framing fields.
		k := pipeline.ResponseKey(f.name)
		if k == "Content-Length" {
			if cl {
				continue // equal duplicates (parseHead checked): send one
			}
			cl = true
		}
		vals[i] = f.value
		if fresh {
			n := len(h)
			h[k] = vals[i : i+1 : i+1]
			if len(h) == n {
				clear(h)
				return false
			}
		} else if old, ok := h[k]; ok {
			h[k] = append(old, f.value)
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
		i++
	}
	return true
}

// forwarded reports whether the app's response field name reaches the
// client: the response rules pass it (responseFieldRule) and the app's
// Connection field does not name it (the fields it names are its
// connection's own, RFC 9110 §7.6.1). Every copy of an app's HTTP/1.1
// head asks it: a final answer's, a 1xx's, a 101's. Most answers have no
// Connection field and pay one check for it.
func (res *response) forwarded(name string) bool {
	return responseFieldRule(name) && (len(res.connection) == 0 || !connectionListed(res.connection, name))
}

var connectionClose = []string{"close"}

// bodyAllowed reports whether a response to method with status has a body.
func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status != http.StatusNoContent &&
		status != http.StatusNotModified && status >= 200
}

// trailerAllowed reports whether k may be sent as a trailer: a field the
// response rules pass (responseFieldRule) that does not frame the message
// or route it. (The fields the app's Connection names are removed by the
// caller too: response.forwarded.)
func trailerAllowed(k string) bool {
	switch k {
	case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Connection":
		return false
	}
	return responseFieldRule(k)
}

// copyError says which side of a body copy failed.
type copyError struct {
	err    error
	client bool // writing to the client failed
}

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// abort ends a response whose body could not be copied.
func (ex *exchange) abort(err error) {
	var ce *copyError
	if errors.As(err, &ce) && !ce.client && ex.ctx.Err() == nil {
		ex.h.log.Warn("app response body cut off", "pid", ex.lease.PID,
			"method", ex.in.method, "path", ex.path(), "err", err)
	}
	ex.release(false)
	panic(http.ErrAbortHandler)
}

// write sends p to the client.
func (ex *exchange) write(p []byte) error {
	if _, err := ex.w.Write(p); err != nil {
		return &copyError{err: err, client: true}
	}
	ex.dirty = true
	return nil
}

// flushIfIdle flushes the client response when the next read from the app
// would wait: nothing of the response is buffered.
func (ex *exchange) flushIfIdle(br *bufio.Reader) {
	if ex.dirty && br.Buffered() == 0 && ex.flusher != nil {
		ex.flusher.Flush()
		ex.dirty = false
	}
}

// copyN copies n body bytes (n < 0: until the app closes the connection).
func (ex *exchange) copyN(n int64) error {
	br := ex.conn.br
	var bufp *[bufferSize]byte
	triedSplice := false
	defer func() {
		if bufp != nil {
			buffers.Put(bufp)
		}
	}()
	for n != 0 {
		if b := br.Buffered(); b > 0 {
			if n > 0 && int64(b) > n {
				b = int(n)
			}
			p, _ := br.Peek(b)
			if err := ex.write(p); err != nil {
				return err
			}
			_, _ = br.Discard(b)
			if n > 0 {
				n -= int64(b)
			}
			continue
		}
		if n >= spliceMin && !triedSplice && ex.conn.tcp != nil {
			triedSplice = true
			if s, ok := ex.w.(pipeline.BodySplicer); ok && s.SpliceReady(n) {
				ex.dirty = false
				return ex.splice(s, n)
			}
		}
		ex.flushIfIdle(br)
		if bufp == nil {
			bufp = buffers.Get().(*[bufferSize]byte)
		}
		p := bufp[:]
		if n > 0 && int64(len(p)) > n {
			p = p[:n]
		}
		m, err := br.Read(p)
		if m > 0 {
			if werr := ex.write(p[:m]); werr != nil {
				return werr
			}
			if n > 0 {
				n -= int64(m)
			}
		}
		if err == io.EOF && n < 0 {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &copyError{err: ex.ctxErr(err)}
		}
	}
	return nil
}

// spliceMin is the least body a response must still have to come (beyond
// what the connection's reader holds) for splice to pay: measured
// (bench/run.sh, bench/NOTES.md), a 64 KiB body costs more CPU spliced
// than copied, a 1 MiB body less.
// spliceStep is the most spliced at once: the app's read deadline is
// renewed before each step (as before each read of the copying path). A
// step that waited for a slow client past that deadline, after the app had
// sent some of its bytes, goes on with a new one: requestTimeout bounds the
// app's silence (within two timeouts here), not the client's pace.
const (
	spliceMin  = 128 << 10
	spliceStep = 256 << 10
)

// splice copies the last n body bytes from the app's connection to the
// client with s, in steps of at most spliceStep. Failures are those of
// copyN: an app that ends the body early is an io.ErrUnexpectedEOF on
// the app's side.
func (ex *exchange) splice(s pipeline.BodySplicer, n int64) error {
	c := ex.conn
	for n > 0 {
		step := min(n, spliceStep)
		if c.itc != nil {
			c.itc.extend(false)
		}
		m, client, err := s.SpliceBody(c.tcp, step)
		n -= m
		switch {
		case err != nil && client:
			return &copyError{err: err, client: true}
		case m > 0 && c.itc != nil && errors.Is(err, os.ErrDeadlineExceeded):
			// The app's deadline passed while the step waited for the
			// client (a slow reader) between two of its reads from the
			// app; the app had sent bytes. requestTimeout bounds the
			// app's silence, not the client's pace: the next step gets a
			// new deadline, and an app that sends nothing for it fails
			// there.
		case err != nil:
			return &copyError{err: ex.ctxErr(err)}
		case m < step:
			return &copyError{err: ex.ctxErr(io.ErrUnexpectedEOF)}
		}
	}
	return nil
}

// ctxErr returns the context's error in place of err once the client has
// gone (the disconnect callback closed the app connection).
func (ex *exchange) ctxErr(err error) error {
	if cerr := ex.ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// copyChunked copies a chunked body and then the trailers.
func (ex *exchange) copyChunked() error {
	br := ex.conn.br
	for {
		ex.flushIfIdle(br)
		size, err := readChunkSize(br)
		if err != nil {
			return &copyError{err: ex.ctxErr(err)}
		}
		if size == 0 {
			break
		}
		if err := ex.copyN(size); err != nil {
			return err
		}
		if err := readCRLF(br); err != nil {
			return &copyError{err: ex.ctxErr(err)}
		}
	}
	return ex.copyTrailers(br)
}

// copyTrailers reads the trailer section after the last chunk and hands
// the fields the rules pass (trailerAllowed, not named by the app's
// Connection field, a value that cannot break the framing) to the client's
// response as trailers: each under http.TrailerPrefix, announced or not,
// so that no writer can take it for a header field (RFC 9110 §6.5.1: an
// intermediary does not merge trailers into the header section), even one
// whose header has not gone out yet (a small answer held whole, or none).
func (ex *exchange) copyTrailers(br *bufio.Reader) error {
	buf := ex.head[:0]
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if err == bufio.ErrBufferFull {
				err = malformed("trailer line too long")
			}
			return &copyError{err: ex.ctxErr(err)}
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			break
		}
		if len(buf)+len(line) > maxResponseHeader {
			return &copyError{err: errHeaderTooLarge}
		}
		buf = append(buf, line...)
	}
	ex.head = buf
	if len(buf) == 0 {
		return nil
	}
	s := string(buf)
	h := ex.w.Header()
	for s != "" {
		var line string
		line, s, _ = nextLine(s)
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' || !h1.IsToken(line[:colon]) {
			return &copyError{err: malformed("trailer line %q", trunc(line))}
		}
		value := h1.TrimOWS(line[colon+1:])
		if !h1.ValidFieldValue(value) {
			return &copyError{err: malformed("trailer value")}
		}
		k := http.CanonicalHeaderKey(line[:colon])
		if !trailerAllowed(k) || !ex.res.forwarded(k) {
			continue
		}
		k = http.TrailerPrefix + k
		h[k] = append(h[k], value)
	}
	return nil
}
