// Package wsframe reads and writes single WebSocket frames (RFC 6455 §5.2)
// for the places that speak WebSocket over an HTTP/2 or HTTP/3 stream
// (RFC 8441, RFC 9220), where coder/websocket, which knows only the
// HTTP/1.1 upgrade, cannot be used: the test app's extended-CONNECT echo and
// the tests that drive a tunnel frame by frame. Gatehouse itself relays
// tunnel bytes and never parses frames.
package wsframe

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame is one WebSocket frame: Head is its first byte (FIN, RSV and
// opcode; Op gives the opcode), Masked tells whether the sender masked it
// (every client frame is masked, no server frame is), and Payload is the
// unmasked payload.
type Frame struct {
	Head    byte
	Masked  bool
	Payload []byte
}

// Op is the frame's opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
func (f Frame) Op() byte { return f.Head & 0x0f }

// Read reads one frame from r, refusing a payload longer than max bytes.
func Read(r io.Reader, max uint64) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > max {
		return Frame{}, fmt.Errorf("websocket frame of %d bytes, over %d", n, max)
	}
	f := Frame{Head: h[0], Masked: h[1]&0x80 != 0}
	var mask [4]byte
	if f.Masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return Frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= mask[i%4]
		}
	}
	return f, nil
}

// ReadClient is Read for a client's frame, which must be masked.
func ReadClient(r io.Reader, max uint64) (Frame, error) {
	f, err := Read(r, max)
	if err == nil && !f.Masked {
		err = errors.New("websocket: client frame not masked")
	}
	return f, err
}

// ReadServer is Read for a server's frame, which must not be masked.
func ReadServer(r io.Reader, max uint64) (Frame, error) {
	f, err := Read(r, max)
	if err == nil && f.Masked {
		err = errors.New("websocket: server frame masked")
	}
	return f, err
}

// Head is the head of an unmasked (server) frame whose first byte is head
// and whose payload is n bytes; the payload follows it as it is.
func Head(head byte, n int) []byte {
	return appendHead([]byte{head}, 0, n)
}

// Server is an unmasked, final frame with opcode op and payload p.
func Server(op byte, p []byte) []byte {
	return append(Head(0x80|op, len(p)), p...)
}

// Client is a masked, final frame with opcode op and payload p, as a
// client sends it.
func Client(op byte, p []byte) []byte {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b := append(appendHead([]byte{0x80 | op}, 0x80, len(p)), mask[:]...)
	for i := range p {
		b = append(b, p[i]^mask[i%4])
	}
	return b
}

// appendHead appends the payload length n, with the mask bit maskBit, in
// the shortest of the three forms.
func appendHead(b []byte, maskBit byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, maskBit|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, maskBit|126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, maskBit|127), uint64(n))
}
