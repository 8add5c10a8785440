package frontend

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	"golang.org/x/net/http/httpguts"
)

// h3SmallAnswer is the most body an HTTP/3 answer holds back before its
// header goes out, so that a small answer goes with its Content-Length
// (quic-go's writer holds back as much, for the same reason).
const h3SmallAnswer = 4096

// h3Writer is the answer to an HTTP/3 request. quic-go's writer sends the
// trailers and the stream's end (FIN) only after the handler returned, so
// a request would be reported before its answer's end is handed to the
// network. h3Writer takes the request's stream from quic-go's writer
// (http3.HTTPStreamer) when the header goes out, writes the body on it as
// DATA frames, and its Finish sends the trailers and the FIN while serve
// still runs, as the lean writer and the HTTP/2 server's stream do
// (answerFinisher). Until the header goes out, the status and a small body
// are held back: an answer that ends within h3SmallAnswer bytes goes with
// its Content-Length. A HEAD answer's body is counted, not sent, and sets
// the Content-Length a GET would have had.
type h3Writer struct {
	w      http.ResponseWriter // quic-go's
	str    *http3.Stream       // the stream, once the header went out
	status int                 // the final status (0: not yet)
	head   bool                // a HEAD request
	held   []byte              // body held back until the header goes out
	n      int64               // body bytes of a HEAD answer
	// trailers are the fields the header declared in its Trailer field,
	// as the header went out.
	trailers []string
	err      error // the first failed write; the stream is reset
	finished bool  // Finish ran (or the stream was reset)
}

var _ answerFinisher = (*h3Writer)(nil)

// newH3Writer returns the answer to r, whose writer (quic-go's) is w.
func newH3Writer(w http.ResponseWriter, r *http.Request) *h3Writer {
	return &h3Writer{w: w, head: r.Method == http.MethodHead}
}

func (w *h3Writer) Header() http.Header { return w.w.Header() }

// WriteHeader sends a 1xx header at once (quic-go's writer does); a final
// status is held until the body or the answer's end sends it.
func (w *h3Writer) WriteHeader(code int) {
	if w.status != 0 || w.str != nil {
		return
	}
	if code < http.StatusOK {
		w.w.WriteHeader(code)
		return
	}
	w.status = code
}

func (w *h3Writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.head {
		w.n += int64(len(p))
		return len(p), nil
	}
	if w.str == nil && len(w.held)+len(p) < h3SmallAnswer {
		w.held = append(w.held, p...)
		return len(p), nil
	}
	if err := w.send(); err != nil {
		return 0, err
	}
	n, err := w.str.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// send sends the header, if it has not gone out, and the body held back.
func (w *h3Writer) send() error {
	if w.err != nil {
		return w.err
	}
	if w.str == nil {
		w.trailers = declaredTrailers(w.w.Header())
		w.w.WriteHeader(w.status)
		str, err := w.w.(http3.HTTPStreamer).HTTPStream() // sends the header
		if err != nil {
			w.err = fmt.Errorf("send the HTTP/3 response header: %w", err)
			return w.err
		}
		w.str = str
	}
	if len(w.held) > 0 {
		_, err := w.str.Write(w.held)
		w.held = nil
		if err != nil {
			w.err = err
		}
	}
	return w.err
}

// FlushError sends the header and the body written so far.
func (w *h3Writer) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.send()
}

func (w *h3Writer) Flush() { _ = w.FlushError() }

// SetReadDeadline and SetWriteDeadline are the stream's (quic-go's writer
// sets them on the same stream).
func (w *h3Writer) SetReadDeadline(t time.Time) error {
	if d, ok := w.w.(readDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return http.ErrNotSupported
}

func (w *h3Writer) SetWriteDeadline(t time.Time) error {
	if d, ok := w.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return http.ErrNotSupported
}

// Finish ends the answer: the header and the body held back, with the
// Content-Length of the whole answer if none was set; then the trailers
// and the stream's FIN. A failed answer resets the stream instead, as
// quic-go's server does. A second call only returns the first's error.
func (w *h3Writer) Finish() error {
	if w.finished {
		return w.err
	}
	w.finished = true
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.str == nil && bodyAllowed(w.status) {
		if h := w.w.Header(); h.Get("Content-Length") == "" {
			h.Set("Content-Length", strconv.FormatInt(w.n+int64(len(w.held)), 10))
		}
	}
	if err := w.send(); err != nil {
		w.reset(http3.ErrCodeRequestCanceled)
		if w.str == nil {
			// The header never went out, so the stream is still
			// quic-go's, which finishes the answer after the handler
			// (status, no body, FIN): an answer that looks whole. A
			// write deadline in the past fails that, and quic-go then
			// resets the stream.
			_ = w.SetWriteDeadline(time.Unix(1, 0))
		}
		return err
	}
	if err := w.sendTrailers(); err != nil {
		w.err = err
		w.reset(http3.ErrCodeRequestCanceled)
		return err
	}
	// The FIN; a request body the handler did not read to its end is not
	// wanted (quic-go's server does the same after the handler).
	if err := w.str.Close(); err != nil {
		w.err = err
		return err
	}
	w.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
	return nil
}

// abort resets the stream of an answer serve did not end (the handler
// panicked): quic-go's server resets a stream it still holds after a
// panic, but not one taken from it.
func (w *h3Writer) abort() {
	if !w.finished {
		w.finished = true
		w.reset(http3.ErrCodeInternalError)
	}
}

// reset resets the stream both ways, once it was taken.
func (w *h3Writer) reset(code http3.ErrCode) {
	if w.str != nil {
		w.str.CancelRead(quic.StreamErrorCode(code))
		w.str.CancelWrite(quic.StreamErrorCode(code))
	}
}

// sendTrailers sends the trailer fields that have values: those the
// header declared and those set with http.TrailerPrefix, as a HEADERS
// frame after the body (RFC 9114 §4.1).
func (w *h3Writer) sendTrailers() error {
	h := w.w.Header()
	var block bytes.Buffer
	enc := qpack.NewEncoder(&block)
	add := func(name string, vals []string) error {
		if !httpguts.ValidTrailerHeader(name) {
			return nil
		}
		for _, v := range vals {
			if err := enc.WriteField(qpack.HeaderField{Name: strings.ToLower(name), Value: v}); err != nil {
				return fmt.Errorf("encode trailer %s: %w", name, err)
			}
		}
		return nil
	}
	for _, name := range w.trailers {
		if err := add(name, h[name]); err != nil {
			return err
		}
	}
	for k, vals := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if err := add(http.CanonicalHeaderKey(name), vals); err != nil {
				return err
			}
		}
	}
	if block.Len() == 0 || w.head {
		return nil
	}
	const headersFrame = 0x1
	f := quicvarint.Append(make([]byte, 0, 16+block.Len()), headersFrame)
	f = quicvarint.Append(f, uint64(block.Len()))
	f = append(f, block.Bytes()...)
	if _, err := w.str.QUICStream().Write(f); err != nil {
		return fmt.Errorf("send the HTTP/3 trailers: %w", err)
	}
	return nil
}

// declaredTrailers returns the names h's Trailer field declares, in
// canonical form.
func declaredTrailers(h http.Header) []string {
	var names []string
	for _, v := range h["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				names = append(names, http.CanonicalHeaderKey(name))
			}
		}
	}
	return names
}

// bodyAllowed reports whether an answer with status may have a body.
func bodyAllowed(status int) bool {
	return status >= http.StatusOK && status != http.StatusNoContent && status != http.StatusNotModified
}
