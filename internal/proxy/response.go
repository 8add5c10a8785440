package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// maxResponseHeader bounds an app response's status line and header
// fields together: WinHTTP's limit in ANCM (64 KiB).
const maxResponseHeader = 64 << 10

// max1xx bounds the informational responses before the final one, as Go's
// Transport does.
const max1xx = 5

var (
	errHeaderTooLarge = errors.New("response header exceeds 64 KiB")
	errMalformed      = errors.New("malformed response")
)

// malformed returns an error saying what is wrong with the app's response.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// field is one response header field; name and value point into the
// response's head string.
type field struct{ name, value string }

// response is an app response's head as parsed by parseHead.
type response struct {
	status int
	fields []field
	// contentLength is the body length from Content-Length, -1 if none.
	contentLength int64
	chunked       bool
	// close: the app will close the connection after this response
	// (Connection: close, or HTTP/1.0 without keep-alive).
	close bool
	// connection holds the app's Connection field values.
	connection []string
	// trailer is the Trailer field's value: the announced trailer names.
	trailer []string
}

// readHead reads one response head (status line to the empty line) from br
// into buf and returns it. started reports whether any byte arrived.
func readHead(br *bufio.Reader, buf []byte) (head []byte, started bool, err error) {
	buf = buf[:0]
	lineStart := 0
	for {
		piece, err := br.ReadSlice('\n')
		if len(buf)+len(piece) > maxResponseHeader {
			return nil, true, errHeaderTooLarge
		}
		buf = append(buf, piece...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(buf) > 0:
			return nil, true, io.ErrUnexpectedEOF
		case err != nil:
			return nil, len(buf) > 0, err
		}
		line := buf[lineStart:]
		if lineStart > 0 && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			return buf, true, nil
		}
		if lineStart == 0 {
			// The status line came with the read that filled br; most
			// heads came whole with it. Take the rest at once when the
			// empty line is buffered, instead of line by line.
			rest, _ := br.Peek(br.Buffered())
			if n := headEnd(rest); n > 0 && len(buf)+n <= maxResponseHeader {
				buf = append(buf, rest[:n]...)
				_, _ = br.Discard(n)
				return buf, true, nil
			}
		}
		lineStart = len(buf)
	}
}

// headEnd returns the length of b up to and including the first empty
// line ("\r\n" or "\n") of b's lines, b starting at a line's start, or 0
// if b holds no empty line.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		switch {
		case b[i] == '\n':
			return i + 1
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
	}
	return 0
}

// parseHead parses head (as read by readHead, converted to a string once)
// into res, strictly: HTTP/1.0 or HTTP/1.1, a three-digit status, field
// names that are tokens with no space before the colon, no folded lines,
// no control characters in values, at most one Transfer-Encoding, which must
// be "chunked", and Content-Length values that are equal digit strings.
// Lines may end in CRLF or LF, as Go's client accepts. res.fields is
// appended to.
func parseHead(head string, res *response) error {
	line, rest := nextLine(head)
	if len(line) < len("HTTP/1.1 200") || line[:7] != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return malformed("status line %q", trunc(line))
	}
	http10 := line[7] == '0'
	code := line[9:12]
	if len(line) > 12 && line[12] != ' ' {
		return malformed("status line %q", trunc(line))
	}
	res.status = 0
	for i := 0; i < 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return malformed("status code %q", code)
		}
		res.status = res.status*10 + int(code[i]-'0')
	}
	if res.status < 100 {
		return malformed("status code %q", code)
	}
	res.contentLength = -1
	res.chunked, res.close = false, http10
	res.connection, res.trailer = res.connection[:0], res.trailer[:0]
	var cl string
	haveTE := false
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return malformed("folded header line")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return malformed("header line %q", trunc(line))
		}
		name := line[:colon]
		if !h1.IsToken(name) {
			return malformed("header name %q", trunc(name))
		}
		value := h1.TrimOWS(line[colon+1:])
		if !h1.ValidFieldValue(value) {
			return malformed("value of %s", name)
		}
		switch {
		case fieldIs(name, "Content-Length"):
			if cl != "" && cl != value {
				return malformed("differing Content-Length values")
			}
			n, ok := h1.ParseLength(value)
			if !ok {
				return malformed("Content-Length %q", trunc(value))
			}
			cl, res.contentLength = value, n
		case fieldIs(name, "Transfer-Encoding"):
			if haveTE || !strings.EqualFold(value, "chunked") || http10 {
				return malformed("Transfer-Encoding %q", trunc(value))
			}
			haveTE, res.chunked = true, true
		case fieldIs(name, "Connection"):
			res.connection = append(res.connection, value)
			if h1.HasToken(value, "close") {
				res.close = true
			} else if http10 && h1.HasToken(value, "keep-alive") {
				res.close = false
			}
		case fieldIs(name, "Trailer"):
			for v := value; v != ""; {
				var t string
				t, v, _ = strings.Cut(v, ",")
				if t = h1.TrimOWS(t); t != "" && h1.IsToken(t) {
					res.trailer = append(res.trailer, t)
				}
			}
		}
		res.fields = append(res.fields, field{name, value})
	}
	if res.chunked {
		res.contentLength = -1 // chunked framing wins over Content-Length
	}
	return nil
}

// fieldIs reports whether the field name (a token, so ASCII) is canon,
// ignoring case. The lengths are compared first and the spelling as canon
// writes it (as apps send it) before the case-insensitive comparison:
// most fields of a response are none of the names asked about, and
// strings.EqualFold would compare their first bytes for each.
func fieldIs(name, canon string) bool {
	return len(name) == len(canon) && (name == canon || strings.EqualFold(name, canon))
}

// nextLine splits s after its first line; line has no line ending.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4 << 10

// readChunkSize reads a chunk-size line ("1a;ext=1\r\n"): the size and
// extensions as h1.ChunkSize reads them, then CRLF or LF.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull || err == io.EOF && len(line) > 0 {
			return 0, malformed("chunk size line")
		}
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(line) > maxChunkLine {
		return 0, malformed("chunk size line too long")
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	size, err := h1.ChunkSize(line)
	if err != nil {
		return 0, malformed("chunk size line %q", trunc(string(line)))
	}
	return size, nil
}

// readCRLF reads the line ending after a chunk's data.
func readCRLF(br *bufio.Reader) error {
	b, err := br.ReadByte()
	if err == nil && b == '\r' {
		b, err = br.ReadByte()
	}
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if b != '\n' {
		return malformed("chunk data not followed by CRLF")
	}
	return nil
}
