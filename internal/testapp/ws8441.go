package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
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
		if _, err := w.Write(wsFrameHead(head, len(p))); err != nil {
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
		head, p, err := readWSFrame(r.Body)
		if err != nil {
			return
		}
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

// readWSFrame reads one masked client frame and returns its first byte
// (FIN, opcode) and its unmasked payload.
func readWSFrame(r io.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 == 0 {
		return 0, nil, errors.New("websocket: client frame not masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > maxWSPayload {
		return 0, nil, errors.New("websocket: frame too large")
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return 0, nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return h[0], p, nil
}

// wsFrameHead is the head of an unmasked server frame whose first byte is
// head and whose payload is n bytes.
func wsFrameHead(head byte, n int) []byte {
	b := []byte{head}
	switch {
	case n < 126:
		return append(b, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}
