package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"

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

// readResponse reads one response head from br and parses it into res
// (parseHead). A head that is in br's buffer whole after the first read
// (most are) is parsed there, in the one walk that also finds its end, and
// then copied once, into the string that res's strings point into (see
// rebase); any other is read line by line into buf (readHead) and parsed
// then. It returns buf as the line by line read left it, for reuse.
// started reports whether any byte arrived.
func readResponse(br *bufio.Reader, buf []byte, res *response) (_ []byte, started bool, err error) {
	res.fields = res.fields[:0]
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return buf, false, err // as readHead: nothing came
		}
	}
	b, _ := br.Peek(br.Buffered())
	// view is b as a string without a copy: parseLines's strings point into
	// br's buffer until rebase points them at the head's own copy, and
	// nothing reads from br meanwhile.
	view := unsafe.String(unsafe.SliceData(b), len(b))
	n, err := parseLines(view, true, res)
	if err != nil {
		// A fault in a line before the head's end is reported once the
		// head is whole, as readHead and parseHead do; a head that is
		// not whole yet is read on, below.
		if end := headEnd(b[n:]); end > 0 && n+end <= maxResponseHeader {
			_, _ = br.Discard(n + end)
			return buf, true, err
		}
		n = 0
	}
	if n > 0 && n <= maxResponseHeader {
		head := string(b[:n])
		res.rebase(view, head)
		_, _ = br.Discard(n)
		return buf, true, nil
	}
	res.fields = res.fields[:0]
	head, started, err := readHead(br, buf)
	if err != nil {
		return buf, started, err
	}
	return head, true, parseHead(string(head), res)
}

// rebase points res's strings, all substrings of from, at the same bytes of
// to, a copy of from's first len(to) bytes that holds them all.
func (res *response) rebase(from, to string) {
	for i := range res.fields {
		f := &res.fields[i]
		f.name, f.value = substring(from, to, f.name), substring(from, to, f.value)
	}
	for i, v := range res.connection {
		res.connection[i] = substring(from, to, v)
	}
	for i, v := range res.trailer {
		res.trailer[i] = substring(from, to, v)
	}
}

// substring returns the bytes of to at s's place in from; s is a substring
// of from. (One that is not panics on to's bounds, or points elsewhere in
// to: a string stored by parseLines is always one.)
func substring(from, to, s string) string {
	if s == "" {
		return ""
	}
	off := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(from)))
	return to[off : off+uintptr(len(s))]
}

// parseHead parses head (as read by readHead, converted to a string once)
// into res, strictly: HTTP/1.0 or HTTP/1.1, a three-digit status, field
// names that are tokens with no space before the colon, no folded lines,
// no control characters in values, at most one Transfer-Encoding, which must
// be "chunked", and Content-Length values that are equal digit strings.
// Lines may end in CRLF or LF, as Go's client accepts. res.fields is
// appended to.
func parseHead(head string, res *response) error {
	_, err := parseLines(head, false, res)
	return err
}

// headState is what parseLines keeps between a head's lines.
type headState struct {
	cl     string // the Content-Length value seen, "" if none
	haveTE bool   // a Transfer-Encoding field was seen
	http10 bool   // the status line says HTTP/1.0
}

// parseLines is parseHead over s, and with prefix the walk that finds the
// head's end too: s is then what the reader holds, which may end before
// the head does. It returns the head's length, empty line included; 0
// (and no error) when prefix is set and s holds no whole line up to the
// empty one. On a fault it returns the length of s up to the end of the
// line at fault.
func parseLines(s string, prefix bool, res *response) (int, error) {
	line, rest, ok := nextLine(s)
	if prefix && !ok {
		return 0, nil
	}
	st := headState{}
	if err := res.statusLine(line, &st); err != nil {
		return len(s) - len(rest), err
	}
	for {
		line, rest, ok = nextLine(rest)
		if prefix && !ok {
			return 0, nil
		}
		if line == "" {
			break
		}
		if err := res.field(line, &st); err != nil {
			return len(s) - len(rest), err
		}
	}
	if res.chunked {
		res.contentLength = -1 // chunked framing wins over Content-Length
	}
	return len(s) - len(rest), nil
}

// statusLine parses the status line into res and starts the head's state.
func (res *response) statusLine(line string, st *headState) error {
	if len(line) < len("HTTP/1.1 200") || line[:7] != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return malformed("status line %q", trunc(line))
	}
	st.http10 = line[7] == '0'
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
	res.chunked, res.close = false, st.http10
	res.connection, res.trailer = res.connection[:0], res.trailer[:0]
	return nil
}

// field parses one header field line into res.
func (res *response) field(line string, st *headState) error {
	if line[0] == ' ' || line[0] == '\t' {
		return malformed("folded header line")
	}
	colon := h1.TokenPrefix(line) // a name that is a token ends at the colon
	if colon == 0 || colon == len(line) || line[colon] != ':' {
		if colon = strings.IndexByte(line, ':'); colon <= 0 {
			return malformed("header line %q", trunc(line))
		}
		return malformed("header name %q", trunc(line[:colon]))
	}
	name := line[:colon]
	value := h1.TrimOWS(line[colon+1:])
	if !h1.ValidFieldValue(value) {
		return malformed("value of %s", name)
	}
	switch {
	case fieldIs(name, "Content-Length"):
		if st.cl != "" && st.cl != value {
			return malformed("differing Content-Length values")
		}
		n, ok := h1.ParseLength(value)
		if !ok {
			return malformed("Content-Length %q", trunc(value))
		}
		st.cl, res.contentLength = value, n
	case fieldIs(name, "Transfer-Encoding"):
		if st.haveTE || !h1.EqualFoldASCII(value, "chunked") || st.http10 {
			return malformed("Transfer-Encoding %q", trunc(value))
		}
		st.haveTE, res.chunked = true, true
	case fieldIs(name, "Connection"):
		res.connection = append(res.connection, value)
		if h1.HasToken(value, "close") {
			res.close = true
		} else if st.http10 && h1.HasToken(value, "keep-alive") {
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

// nextLine splits s after its first line; line has no line ending. ok
// reports that the line had one (else line is all of s).
func nextLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, "", false
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest, true
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
