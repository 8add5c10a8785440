package h1

import (
	"bytes"
	"io"
)

// MaxChunkLine bounds a chunk-size line with its extensions, and
// MaxTrailer the trailer section; longer ones are refused (400).
const (
	MaxChunkLine = 1 << 10
	MaxTrailer   = 4 << 10
)

// Body reads one request body from an Input: Content-Length bytes, or a
// chunked body decoded strictly (sizes of 1 to 15 hex digits, extensions
// as RFC 9112 §7.1.1 writes them, CRLF after every line and chunk, trailer
// fields as strict as header fields). Trailer fields are checked and
// dropped. A framing error is an *Error (400) and stays the result of every
// later Read.
type Body struct {
	in *Input
	// BeforeWait, if set, is called once before the first read that has
	// to wait for the client (to send 100 Continue).
	BeforeWait func()
	n          int64 // bytes left: of the body, or of the current chunk
	chunked    bool
	state      uint8
	err        error
}

const (
	stateData = iota // n bytes of data (or of the chunk) to go
	stateSize        // a chunk-size line is next
	stateCRLF        // the CRLF after a chunk's data is next
	stateDone
)

// Reset prepares b to read a body of length n (-1: chunked) from in.
func (b *Body) Reset(in *Input, n int64) {
	*b = Body{in: in, n: n}
	if n < 0 {
		b.chunked, b.n, b.state = true, 0, stateSize
	} else if n == 0 {
		b.state = stateDone
	}
}

// Done reports whether the whole body (and its trailers) has been read.
func (b *Body) Done() bool { return b.state == stateDone && b.err == nil }

// Read reads body bytes. It returns io.EOF after the last one.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		switch b.state {
		case stateDone:
			return 0, io.EOF
		case stateSize:
			if err := b.readSize(); err != nil {
				return 0, b.fail(err)
			}
		case stateCRLF:
			line, err := b.line(2)
			if err != nil {
				return 0, b.fail(err)
			}
			if len(line) != 2 {
				return 0, b.fail(bad("chunk data longer than its size"))
			}
			b.state = stateSize
		default:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > b.n {
				p = p[:b.n]
			}
			b.wait()
			n, err := b.in.Read(p)
			b.n -= int64(n)
			if b.n == 0 {
				if b.chunked {
					b.state = stateCRLF
				} else {
					b.state = stateDone
				}
			}
			if n > 0 {
				return n, nil
			}
			if err == io.EOF || err == nil {
				err = io.ErrUnexpectedEOF
			}
			return 0, b.fail(err)
		}
	}
}

func (b *Body) fail(err error) error {
	b.err = err
	return err
}

// wait calls BeforeWait before the first read that would block.
func (b *Body) wait() {
	if b.BeforeWait != nil && len(b.in.Buffered()) == 0 {
		b.BeforeWait()
		b.BeforeWait = nil
	}
}

// line returns the next line, CRLF included, consuming it. It reads at
// most max bytes; a longer line, a bare CR or LF is a framing error.
func (b *Body) line(max int) ([]byte, error) {
	for {
		buf := b.in.Buffered()
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := buf[:i+1]
			if i+1 > max {
				return nil, bad("chunk line too long")
			}
			if i == 0 || line[i-1] != '\r' || bytes.IndexByte(line[:i-1], '\r') >= 0 {
				return nil, bad("chunk line not ended by CRLF")
			}
			b.in.Discard(i + 1)
			return line, nil
		}
		if len(buf) >= max {
			return nil, bad("chunk line too long")
		}
		b.wait()
		if err := b.in.Fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// readSize reads a chunk-size line; for the last chunk it also reads the
// trailer section.
func (b *Body) readSize() error {
	line, err := b.line(MaxChunkLine)
	if err != nil {
		return err
	}
	size, err := ChunkSize(line[:len(line)-2])
	if err != nil {
		return err
	}
	if size > 0 {
		b.n, b.state = size, stateData
		return nil
	}
	total := 0
	for {
		line, err := b.line(MaxTrailer)
		if err != nil {
			return err
		}
		if len(line) == 2 {
			break
		}
		if total += len(line); total > MaxTrailer {
			return bad("trailer section too large")
		}
		if _, _, err := parseField(string(line[:len(line)-2])); err != nil {
			return bad("invalid trailer field")
		}
	}
	b.state = stateDone
	return nil
}
