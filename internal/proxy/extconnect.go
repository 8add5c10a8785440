package proxy

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// A WebSocket over HTTP/2 or HTTP/3 arrives as an extended CONNECT (RFC
// 8441, RFC 9220): method CONNECT with the ":protocol" pseudo-header
// "websocket", the WebSocket's bytes in the stream's body and response.
// An HTTP/1.1 app knows WebSockets only as an Upgrade (RFC 6455), so the
// proxy opens one on the client's behalf: it sends GET with Connection:
// Upgrade, Upgrade: websocket and a Sec-WebSocket-Key of its own (the
// client's request carries none), the other fields by the same request
// rules as any request (appendRequestFields). On the app's 101 with the
// matching Sec-WebSocket-Accept, the client gets 200 (RFC 8441 §5) with
// the app's fields, and the stream and the app's connection are relayed
// to each other; any other answer reaches the client as it is.
//
// An h2c app gets the extended CONNECT as one (h2tunnel.go).

// websocketGUID is RFC 6455's key suffix (§1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// isExtendedConnect reports whether r is the extended CONNECT of a
// WebSocket (the only CONNECT pipeline.Validate lets through).
func isExtendedConnect(r *pipeline.Request) bool {
	return r.Method == http.MethodConnect && r.Header != nil &&
		h1.EqualFoldASCII(r.Header.Get(":protocol"), "websocket")
}

// toUpgrade turns the exchange of an extended CONNECT into a WebSocket
// upgrade: GET without a body, a fresh key; stream keeps the client's
// side of the tunnel (nil: none) for the relay.
func (ex *exchange) toUpgrade(stream io.Reader) {
	var key [16]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	ex.in.method = http.MethodGet
	ex.in.upgrade = "websocket"
	ex.in.wsKey = base64.StdEncoding.EncodeToString(key[:])
	ex.in.contentLength = 0
	ex.body, ex.stream = nil, stream
}

// websocketAccept is the Sec-WebSocket-Accept answering key (RFC 6455 §4.2.2).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// acceptStream completes an extended CONNECT whose WebSocket the app
// accepted (ex.res is its 101, ex.conn the connection): the client is
// answered 200 with the app's fields by the response rules (less
// Sec-WebSocket-Accept, which belongs to the app's handshake), and bytes
// are relayed until either side ends or ex.ctx ends. Called by
// switchProtocols, which closes the app's connection afterwards.
func (ex *exchange) acceptStream() {
	accept := ""
	for _, f := range ex.res.fields {
		if strings.EqualFold(f.name, "Sec-Websocket-Accept") {
			accept = f.value
			break
		}
	}
	if accept != websocketAccept(ex.in.wsKey) {
		ex.h.fail(ex, &BackendError{PID: ex.lease.PID,
			Err: malformed("app answered the WebSocket key with Sec-WebSocket-Accept %q", trunc(accept))}, ex.lease.PID)
		return
	}
	h := ex.w.Header()
	for _, f := range ex.res.fields {
		if ex.res.forwarded(f.name) && !strings.EqualFold(f.name, "Sec-Websocket-Accept") {
			k := http.CanonicalHeaderKey(f.name)
			h[k] = append(h[k], f.value)
		}
	}
	ex.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(ex.w)
	if err := rc.Flush(); err != nil {
		return
	}
	app := ex.conn.nc
	if itc := ex.conn.itc; itc != nil {
		app = itc.Conn // the socket without requestTimeout's deadlines
	}
	_ = app.SetDeadline(time.Time{})
	relayStream(ex.w, rc, ex.stream, app, ex.conn.br)
}

// relayStream relays between the client's stream (its request body,
// stream, and the response w) and the app's connection or extended
// CONNECT stream (appBuf may be nil) until the app's side ends. Each piece of the app's bytes is flushed to the client at
// once. When the client ends its side, the app's connection is closed
// for writing (the app sees the end, as over TCP) and the app's bytes
// still go to the client; when the app's side ends, the stream's reads
// are ended (a read deadline, and Close where the body has one) and the
// app's connection closed. It returns when both directions have stopped.
func relayStream(w http.ResponseWriter, rc *http.ResponseController, stream io.Reader, app io.ReadWriteCloser, appBuf *bufio.Reader) {
	if stream == nil {
		stream = http.NoBody
	}
	done := make(chan struct{})
	go func() { // client → app; ends when the client ends its side or the reads are ended
		defer close(done)
		relayCopy(app, stream)
		if cw, ok := app.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = app.Close()
		}
	}()
	fw := flushWriter{w: w, rc: rc}
	if n := buffered(appBuf); n > 0 {
		p, _ := appBuf.Peek(n)
		_, _ = fw.Write(p)
	}
	relayCopy(fw, app) // app → client
	_ = app.Close()
	_ = rc.SetReadDeadline(time.Now())
	if c, ok := stream.(io.Closer); ok {
		_ = c.Close()
	}
	<-done
}

// flushWriter writes to the client's stream and flushes each write.
type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}
