// Package h1 reads HTTP/1.1 requests strictly (RFC 9112) for the front
// door's lean HTTP/1.1 path: the request head is parsed in place, bodies are
// framed by Content-Length or a strictly checked chunked coding, and
// anything the lean path does not serve itself is reported as a hand-off,
// so the caller gives the connection (with the bytes read so far) to
// net/http.
//
// What is refused (Error, 400 and close): a bare LF or CR, a folded header
// line, whitespace between a field name and its colon, an invalid field
// name or value, a missing, duplicated or invalid Host, a duplicated or
// invalid Content-Length, Transfer-Encoding with Content-Length, any
// Transfer-Encoding but a single "chunked", and (in bodies) bad chunk
// sizes, extensions, line endings and trailers.
//
// What is handed off (ErrHandOff), once the whole head has passed the
// checks above (net/http is more lenient, so it only gets unambiguous
// heads): HTTP/1.0 (Host optional; with Transfer-Encoding, which net/http
// reads as chunked and then closes) and other versions, the HTTP/2
// preface, Upgrade (WebSocket, h2c), CONNECT, a request target that is not
// origin-form ("*", absolute-form) or has bytes beyond ASCII, an Expect
// other than 100-continue, and heads larger than the caller's buffer.
package h1

import (
	"errors"
	"strings"
)

// Error is a request the lean path refuses: answer Status and close the
// connection, since where the next request would start is not known.
type Error struct {
	// Status is the HTTP status to answer with (400).
	Status int
	// Reason says what was wrong, for the log; never shown to the client.
	Reason string
}

func (e *Error) Error() string { return "bad request: " + e.Reason }

// StatusCode returns e.Status.
func (e *Error) StatusCode() int { return e.Status }

func bad(reason string) error { return &Error{Status: 400, Reason: reason} }

// ErrHandOff reports a request that net/http should serve; see the package
// documentation for which.
var ErrHandOff = errors.New("h1: request handed to net/http")

// Field is one header field as received; Name keeps the client's case.
type Field struct{ Name, Value string }

// Request is a parsed request head. Its strings point into the head string
// given to Parse.
type Request struct {
	Method string
	// Path is the escaped path of the origin-form target, RawQuery the part
	// after '?' (without it).
	Path, RawQuery string
	// Host is the Host field's value.
	Host string
	// Header holds the fields in the order received.
	Header Header
	// ContentLength is the body length, -1 for chunked, 0 for no body.
	ContentLength int64
	// Close is set when the client sent Connection: close.
	Close bool
	// Expect100 is set when the client sent Expect: 100-continue.
	Expect100 bool
}

// Reset clears r for reuse, keeping its field slice.
func (r *Request) Reset() {
	f := r.Header.Fields[:0]
	clear(f[:cap(f)])
	*r = Request{Header: Header{Fields: f}}
}

// preface is the start of the HTTP/2 connection preface.
const preface = "PRI * HTTP/2.0\r\n"

// ScanHead looks for the end of a request head at the start of buf. It
// returns the head's length (through the empty line) once buf holds all of
// it, 0 while more bytes are needed, or an error for a line ending that is
// not CRLF. An HTTP/2 preface is ErrHandOff.
func ScanHead(buf []byte) (int, error) {
	start := 0
	for i := 0; i < len(buf); i++ {
		switch buf[i] {
		case '\n':
			if i == 0 || buf[i-1] != '\r' {
				return 0, bad("bare LF")
			}
			if i-1 == start {
				if start == 0 {
					return 0, bad("empty line before the request line")
				}
				return i + 1, nil
			}
			start = i + 1
		case '\r':
			if i+1 < len(buf) && buf[i+1] != '\n' {
				return 0, bad("bare CR")
			}
		}
		if i == len(preface)-1 && string(buf[:len(preface)]) == preface {
			return 0, ErrHandOff
		}
	}
	return 0, nil
}

// Parse parses a complete head (as delimited by ScanHead) into r, which
// should be Reset. It returns nil, an *Error, or ErrHandOff.
func Parse(head string, r *Request) error {
	line, rest := cutLine(head)
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 || !IsToken(line[:sp]) {
		return bad("request line")
	}
	r.Method = line[:sp]
	line = line[sp+1:]
	sp = strings.IndexByte(line, ' ')
	if sp <= 0 {
		return bad("request line")
	}
	target, version := line[:sp], line[sp+1:]
	// A request for net/http is still checked whole: it is handed off
	// only when its framing is unambiguous, since net/http is more lenient.
	handOff, http10 := false, false
	switch {
	case version == "HTTP/1.1":
	case version == "HTTP/1.0":
		handOff, http10 = true, true
	case strings.HasPrefix(version, "HTTP/"):
		handOff = true // net/http answers other versions with 505
	default:
		return bad("request line")
	}
	if r.Method == "CONNECT" || target[0] != '/' {
		handOff = true
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c >= 0x80 || c == '#' {
			handOff = true
			continue
		}
		if c <= ' ' || c == 0x7f {
			return bad("request target")
		}
		if c == '%' && (i+2 >= len(target) || unhex(target[i+1]) < 0 || unhex(target[i+2]) < 0) && !inQuery(target, i) {
			return bad("invalid escape in path")
		}
	}
	r.Path, r.RawQuery, _ = strings.Cut(target, "?")

	var cl, te string
	hosts, cls, tes := 0, 0, 0
	for {
		line, rest = cutLine(rest)
		if line == "" {
			break
		}
		name, value, err := parseField(line)
		if err != nil {
			return err
		}
		switch len(name) {
		case 4:
			if strings.EqualFold(name, "Host") {
				hosts++
				r.Host = value
			}
		case 6:
			if strings.EqualFold(name, "Expect") {
				if !strings.EqualFold(value, "100-continue") {
					handOff = true
				}
				r.Expect100 = true
			}
		case 7:
			if strings.EqualFold(name, "Upgrade") {
				handOff = true
			}
		case 10:
			if strings.EqualFold(name, "Connection") {
				if hasToken(value, "upgrade") {
					handOff = true
				}
				if hasToken(value, "close") {
					r.Close = true
				}
			}
		case 14:
			if strings.EqualFold(name, "Content-Length") {
				cls++
				cl = value
			}
		case 17:
			if strings.EqualFold(name, "Transfer-Encoding") {
				tes++
				te = value
			}
		}
		r.Header.Fields = append(r.Header.Fields, Field{name, value})
	}
	if hosts > 1 || hosts == 0 && !http10 {
		return bad("missing or repeated Host")
	}
	if !ValidHost(r.Host) {
		return bad("invalid Host")
	}
	switch {
	case tes > 0 && http10:
		// RFC 9112 §6.1: faulty framing, close after it; net/http reads it
		// as chunked and closes.
		return ErrHandOff
	case tes > 0 && cls > 0:
		return bad("Transfer-Encoding with Content-Length")
	case tes > 1 || tes == 1 && !strings.EqualFold(te, "chunked"):
		return bad("Transfer-Encoding other than chunked")
	case tes == 1:
		r.ContentLength = -1
	case cls > 1:
		return bad("repeated Content-Length")
	case cls == 1:
		n, ok := parseLength(cl)
		if !ok {
			return bad("invalid Content-Length")
		}
		r.ContentLength = n
	}
	if handOff {
		return ErrHandOff
	}
	return nil
}

// inQuery reports whether target[i] is in the query.
func inQuery(target string, i int) bool {
	q := strings.IndexByte(target, '?')
	return q >= 0 && q < i
}

// cutLine splits s after its first CRLF (ScanHead checked the endings).
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	return s[:i-1], s[i+1:]
}

// parseField splits a field line strictly: a token name, the colon right
// after it, a value of visible characters, spaces, tabs and obs-text with
// surrounding whitespace removed.
func parseField(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", bad("folded header line")
	}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", bad("header line without colon")
	}
	name = line[:colon]
	if !IsToken(name) {
		return "", "", bad("invalid header name") // whitespace before the colon too
	}
	value = TrimOWS(line[colon+1:])
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", bad("control character in header value")
		}
	}
	return name, value, nil
}

// parseLength parses a Content-Length value: 1 to 18 digits.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// hasToken reports whether the comma-separated list v holds tok, ignoring
// case.
func hasToken(v, tok string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(TrimOWS(t), tok) {
			return true
		}
	}
	return false
}

// IsToken reports whether s is an RFC 9110 token (a method, a field name).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ValidHost reports whether h may be a Host value: the characters of a
// host (reg-name, IP literal) and port; empty is allowed (RFC 9112 §3.2).
// pipeline.Validate applies it to the Host and :authority of every
// protocol.
func ValidHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostChar[h[i]] {
			return false
		}
	}
	return true
}

var hostChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=:[]%" {
		t[c] = true
	}
	return t
}()
