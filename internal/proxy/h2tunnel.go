package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// A WebSocket to an h2c app goes over HTTP/2 as well: an extended CONNECT
// stream (RFC 8441) on a connection of its own (h2client.go), whatever
// the client used, an HTTP/1.1 upgrade or an extended CONNECT over HTTP/2
// or HTTP/3. The stream carries the fields of every request (the header
// rules of appendRequestFields: token, identity, X-Forwarded-*, no
// hop-by-hop fields, no Sec-WebSocket-Extensions as for every WebSocket)
// without Sec-WebSocket-Key, which HTTP/2 does not use. The app's 200
// opens the tunnel: an HTTP/1.1 client gets 101 with the
// Sec-WebSocket-Accept its key asks for, an HTTP/2 or HTTP/3 client 200;
// any other answer reaches the client as the app gave it. An app that did
// not announce extended CONNECT in its SETTINGS is named in the log and
// the client is answered 501.

// forwardTunnel relays the WebSocket of ex (in.tunnel) to an h2c app over
// ex.lease's process, which forward holds until the tunnel ends, as for an
// upgraded HTTP/1.1 connection. A tunnel the app did not process (the
// connection refused, or failed before the app sent anything) is opened
// once more on a process acquired again. requestTimeout bounds connecting and the wait
// for the app's answer, and each read of the body of an answer other than
// 200; not the tunnel, which the front door's WebSocket idle timeout
// bounds.
func (h *Handler) forwardTunnel(ex *exchange) {
	t, err := h.dialTunnel(ex)
	if err != nil && ex.ctx.Err() == nil && notProcessed(err) {
		if !h.retryOnNewProcess(ex, err, true) {
			return
		}
		t, err = h.dialTunnel(ex)
	}
	if errors.Is(err, errNoExtendedConnect) {
		pipeline.SetUpstream(ex.w, ex.lease.PID, time.Time{})
		h.log.Warn("WebSocket not relayed to the h2c app", "pid", ex.lease.PID,
			"method", ex.in.method, "path", ex.path(), "status", http.StatusNotImplemented, "err", err)
		http.Error(ex.w, "This application takes no WebSockets over HTTP/2.", http.StatusNotImplemented)
		return
	}
	if err != nil {
		pipeline.SetUpstream(ex.w, ex.lease.PID, time.Time{})
		h.fail(ex, &BackendError{PID: ex.lease.PID, Err: err}, ex.lease.PID)
		return
	}
	defer t.Close()
	pipeline.SetUpstream(ex.w, ex.lease.PID, headArrived())
	switch {
	case t.Status() != http.StatusOK:
		ex.tunnelRefused(t)
	case ex.in.method == http.MethodConnect:
		ex.tunnelStream(t)
	default:
		ex.tunnelUpgrade(t)
	}
}

// dialTunnel opens the tunnel to ex.lease's process: a connection of its
// own, whose first SETTINGS must announce extended CONNECT (RFC 8441 §3;
// errNoExtendedConnect otherwise), then the stream (method CONNECT,
// ":protocol" websocket). It returns once the app's final response header
// arrived; the tunnel is open when its Status is 200. requestTimeout
// bounds the dial and the waits for the SETTINGS and the header; ex.ctx
// ending resets the stream at any time, until Close. A failure before the
// app sent anything is an *unheardError (the app did not process it).
func (h *Handler) dialTunnel(ex *exchange) (*h2Stream, error) {
	ctx, cancel := ex.ctx, context.CancelFunc(func() {})
	dialTimeout := defaultDialTimeout
	if d := h.RequestTimeout; d > 0 {
		ctx, cancel = context.WithTimeoutCause(ex.ctx, d, errAppTimeout)
		dialTimeout = d
	}
	defer cancel()
	cc, err := dialH2(ctx, ex.lease.Addr, dialTimeout, defaultH2Windows)
	if err != nil {
		return nil, err
	}
	st, err := h.openTunnel(ctx, ex, cc)
	if err != nil {
		cc.close()
		<-cc.readDone
		if ex.ctx.Err() == nil && !cc.heard.Load() {
			// Not even SETTINGS came: the app did not process the stream.
			err = &unheardError{err}
		}
		return nil, err
	}
	return st, nil
}

// openTunnel waits for cc's SETTINGS and opens the tunnel's stream on it;
// ctx bounds the waits.
func (h *Handler) openTunnel(ctx context.Context, ex *exchange, cc *h2Conn) (*h2Stream, error) {
	select {
	case <-cc.settingsDone:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	cc.mu.Lock()
	err, ok, none := cc.err, cc.xconnect, cc.maxStreams == 0
	cc.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errNoExtendedConnect
	case none:
		return nil, errors.New("the app allows no stream on its HTTP/2 connection")
	}
	// The stream dialH2 reserved is the tunnel's.
	fields := make(h2Fields, 0, 16)
	appendRequestFields(&ex.rf, &fields, &ex.in, ex.lease.Token)
	target := ex.in.path
	if ex.in.query != "" {
		target += "?" + ex.in.query
	}
	st, err := cc.open(ex.ctx, &h2Request{method: http.MethodConnect, protocol: "websocket",
		authority: ex.in.host, path: target, fields: fields, tunnel: true})
	if err != nil {
		return nil, err
	}
	st.ownConn = true
	if err := st.awaitHeader(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// copyTunnelFields copies the app's fields by the response rules, less
// Sec-WebSocket-Accept (HTTP/2 has none; the client's is made here).
func (ex *exchange) copyTunnelFields(t *h2Stream) http.Header {
	h := ex.w.Header()
	for k, vs := range t.Header() {
		if responseFieldRule(k) && k != "Sec-Websocket-Accept" {
			h[k] = append(h[k], vs...)
		}
	}
	return h
}

// tunnelRefused passes on the app's answer other than 200: its fields by
// the response rules, then its body.
func (ex *exchange) tunnelRefused(t *h2Stream) {
	ex.copyTunnelFields(t)
	ex.w.WriteHeader(t.Status())
	bufp := buffers.Get().(*[bufferSize]byte)
	defer buffers.Put(bufp)
	var timer *time.Timer
	if d := ex.h.RequestTimeout; d > 0 {
		timer = time.AfterFunc(d, func() { t.cancel(errAppTimeout) })
		defer timer.Stop()
	}
	for {
		if timer != nil {
			timer.Reset(ex.h.RequestTimeout)
		}
		n, err := t.Read(bufp[:])
		if n > 0 {
			if _, werr := ex.w.Write(bufp[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tunnelStream opens the tunnel of an extended CONNECT client: 200 with
// the app's fields, then the stream and the app's stream are relayed to
// each other.
func (ex *exchange) tunnelStream(t *h2Stream) {
	ex.copyTunnelFields(t)
	ex.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(ex.w)
	if err := rc.Flush(); err != nil {
		return
	}
	relayStream(ex.w, rc, ex.stream, t, nil)
}

// tunnelUpgrade opens the tunnel of an HTTP/1.1 client: its connection is
// hijacked and answered 101 with the app's fields, Connection: Upgrade,
// Upgrade: websocket and the Sec-WebSocket-Accept of the client's key;
// then it and the app's stream are relayed to each other.
func (ex *exchange) tunnelUpgrade(t *h2Stream) {
	client, brw, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		ex.h.fail(ex, fmt.Errorf("hijack the client connection to switch protocols: %w", err), ex.lease.PID)
		return
	}
	defer client.Close()
	h := ex.copyTunnelFields(t)
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{"websocket"}
	h["Sec-Websocket-Accept"] = []string{websocketAccept(ex.in.get("Sec-Websocket-Key"))}
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	relay(client, brw.Reader, t, nil)
}

// tunnelsTo reports whether a WebSocket upgrade over HTTP/1.1 (method,
// the client's Sec-WebSocket-Key, whether it has a body) can go to an h2c
// app as an extended CONNECT: a GET with a key and no body, as RFC 6455
// asks. Any other is forwarded as an ordinary request.
func tunnelsTo(method, key string, body bool) bool {
	return method == http.MethodGet && strings.TrimSpace(key) != "" && !body
}
