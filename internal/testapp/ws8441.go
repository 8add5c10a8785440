package main

import (
	"context"
	"encoding/binary"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/wsframe"
)

// A WebSocket over HTTP/2 (RFC 8441) arrives as an extended CONNECT:
// method CONNECT with the ":protocol" pseudo-header "websocket", the
// WebSocket's frames (RFC 6455) in the request body and the response.
// coder/websocket knows only the HTTP/1.1 upgrade, so /ws serves these
// with the few lines of framing an echo needs. Go's HTTP/2 server takes
// extended CONNECT only when the process runs with GODEBUG=http2xconnect=1.

// maxWSPayload bounds one frame's payload (as the HTTP/1.1 echo bounds a
// message with its read limit).
const maxWSPayload = 4 << 20

// isWSConnect reports whether r is the extended CONNECT of a WebSocket.
func isWSConnect(r *http.Request) bool {
	return r.Method == http.MethodConnect && r.Header.Get(":protocol") == "websocket"
}

// handleWebSocketStream echoes every frame of a WebSocket over an HTTP/2
// stream, its opcode and FIN bit kept, the payload unmasked; pings are
// answered with pongs. A close frame is echoed with the client's code and
// ends the stream. On shutdown the app sends close 1001 and waits for the
// client's close, as the HTTP/1.1 echo does.
func (a *app) handleWebSocketStream(w http.ResponseWriter, r *http.Request) {
	a.websockets.Add(1)
	defer a.websockets.Done()
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex // serialises frame writes
	write := func(head byte, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := w.Write(wsframe.Head(head, len(p))); err != nil {
			return err
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := rc.Flush(); err != nil {
		return
	}
	var closing atomic.Bool // the app sent its close
	defer context.AfterFunc(a.closing, func() {
		closing.Store(true)
		_ = write(0x88, append(binary.BigEndian.AppendUint16(nil, 1001), "server shutting down"...))
	})()
	for {
		f, err := wsframe.ReadClient(r.Body, maxWSPayload)
		if err != nil {
			return
		}
		head, p := f.Head, f.Payload
		switch op := head & 0x0f; op {
		case 0x8: // close: echo it (unless this answers ours) and end
			if !closing.Load() {
				_ = write(head, p)
			}
			return
		case 0x9: // ping
			err = write(0x8a, p)
		case 0xa: // pong
		default:
			err = write(head, p)
		}
		if err != nil {
			return
		}
	}
}
