// Package h1 is the one home of HTTP/1 syntax: it reads HTTP/1.x requests
// strictly (RFC 9112) for the front door's lean loop, and states the rules
// the app-side client and the response writer use too: tokens (IsToken,
// HasToken), field values (ValidFieldValue) and chunk sizes (ChunkSize).
// Request heads are parsed in place; bodies are framed by Content-Length
// or a strictly checked chunked coding.
//
// What is refused (Error, with its status, and close): a bare LF or CR, a
// folded header line, whitespace between a field name and its colon, an
// invalid field name or value, a missing (HTTP/1.1), duplicated or invalid
// Host, a duplicated or invalid Content-Length, Transfer-Encoding with
// Content-Length or in HTTP/1.0, any Transfer-Encoding but a single
// "chunked", CONNECT (Gatehouse is no tunnel, on any protocol), and (in
// bodies) bad chunk sizes, extensions, line endings and trailers (400); an
// Expect other than 100-continue (417); a version other than HTTP/1.x
// (505).
//
// What is served as well as HTTP/1.1: HTTP/1.0 (Host optional, keep-alive
// only on request), HTTP/1.x with a higher minor version (as 1.1),
// absolute-form targets (the authority replaces Host), "OPTIONS *", target
// bytes beyond ASCII (percent-encoded), "Upgrade: h2c" (ignored, its
// fields dropped) and other upgrades (Request.Upgrade). The only hand-off
// (ErrHandOff) is the HTTP/2 connection preface.
package h1

import (
	"bytes"
	"errors"
	"strings"

	"github.com/gatehouse/gatehouse/internal/reqtarget"
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

// refuse is an Error with another status than 400.
func refuse(status int, reason string) error { return &Error{Status: status, Reason: reason} }

// ErrHandOff reports the HTTP/2 connection preface: the connection is
// HTTP/2 from there on.
var ErrHandOff = errors.New("h1: HTTP/2 connection preface")

// Field is one header field as received; Name keeps the client's case.
type Field struct{ Name, Value string }

// Request is a parsed request head. Its strings point into the head string
// given to Parse.
type Request struct {
	Method string
	// Proto is "HTTP/1.1" or "HTTP/1.0".
	Proto string
	// Path is the escaped path of the target ("*" for OPTIONS *), RawQuery
	// the part after '?' (without it). Bytes beyond ASCII and '#' are
	// percent-encoded.
	Path, RawQuery string
	// Host is the Host field's value, or an absolute-form target's
	// authority (which the Host field then holds too).
	Host string
	// Header holds the fields in the order received.
	Header Header
	// ContentLength is the body length, -1 for chunked, 0 for no body.
	ContentLength int64
	// Close is set when the connection ends after this request: the client
	// sent Connection: close, or HTTP/1.0 without Connection: keep-alive.
	Close bool
	// Expect100 is set when an HTTP/1.1 client sent Expect: 100-continue.
	Expect100 bool
	// Upgrade is set for an HTTP/1.1 request to switch protocols
	// (Connection: upgrade and an Upgrade field other than h2c).
	Upgrade bool
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
// not CRLF. An HTTP/2 preface is ErrHandOff. from is how many bytes of buf
// an earlier call has scanned (0 for none): they are not scanned again.
//
// It goes from line end to line end with bytes.IndexByte rather than byte
// by byte: a line is bad if a CR comes before its last byte.
func ScanHead(buf []byte, from int) (int, error) {
	start := bytes.LastIndexByte(buf[:from], '\n') + 1
	for i := max(from-1, start); i < len(buf); {
		end := len(buf) // the line's LF, or the end of what came of it
		if j := bytes.IndexByte(buf[i:], '\n'); j >= 0 {
			end = i + j
		}
		// A CR must be followed by LF: only a line's last byte before its
		// LF (or before the end of buf, its LF still to come) may be one.
		if k := bytes.IndexByte(buf[i:end], '\r'); k >= 0 && i+k < end-1 {
			return 0, bad("bare CR")
		}
		if end == len(buf) {
			break
		}
		if end == 0 || buf[end-1] != '\r' {
			return 0, bad("bare LF")
		}
		if end-1 == start {
			if start == 0 {
				return 0, bad("empty line before the request line")
			}
			return end + 1, nil
		}
		if end == len(preface)-1 && string(buf[:len(preface)]) == preface {
			return 0, ErrHandOff
		}
		start = end + 1
		i = start
	}
	return 0, nil
}

// Parse parses a complete head (as delimited by ScanHead) into r, which
// should be Reset. It returns nil or an *Error.
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
	http10 := false
	switch {
	case version == "HTTP/1.1":
	case version == "HTTP/1.0":
		http10 = true
	case len(version) == 8 && strings.HasPrefix(version, "HTTP/") && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		if version[5] != '1' {
			return refuse(505, "HTTP version "+version)
		}
		version = "HTTP/1.1" // RFC 9110 §2.5: answer as the highest minor we have
	default:
		return bad("request line")
	}
	r.Proto = version
	if r.Method == "CONNECT" {
		return bad("CONNECT is not served")
	}
	escape := false
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c >= 0x80 || c == '#' {
			escape = true
			continue
		}
		if c <= ' ' || c == 0x7f {
			return bad("request target")
		}
		if c == '%' && (i+2 >= len(target) || unhex(target[i+1]) < 0 || unhex(target[i+2]) < 0) && !inQuery(target, i) {
			return bad("invalid escape in path")
		}
	}
	authority, err := splitTarget(r, target)
	if err != nil {
		return err
	}
	if escape {
		// The loop above refused a space or control byte: both parts are
		// valid.
		r.Path, _ = reqtarget.Escape(r.Path)
		r.RawQuery, _ = reqtarget.Escape(r.RawQuery)
	}

	var cl, te string
	hosts, cls, tes, upgrades := 0, 0, 0, 0
	connUpgrade, keepAlive, h2cOnly := false, false, true
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
			if FoldIs(name, "host") {
				hosts++
				r.Host = value
			}
		case 6:
			if FoldIs(name, "expect") {
				if !EqualFoldASCII(value, "100-continue") {
					return refuse(417, "Expect other than 100-continue")
				}
				r.Expect100 = !http10 // RFC 9110 §10.1.1: ignored in HTTP/1.0
			}
		case 7:
			if FoldIs(name, "upgrade") {
				upgrades++
				h2cOnly = h2cOnly && onlyToken(value, "h2c")
			}
		case 10:
			if FoldIs(name, "connection") {
				u, k, c := connectionTokens(value)
				connUpgrade = connUpgrade || u
				keepAlive = keepAlive || k
				r.Close = r.Close || c
			}
		case 14:
			if FoldIs(name, "content-length") {
				cls++
				cl = value
			}
		case 17:
			if FoldIs(name, "transfer-encoding") {
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
	if authority != "" {
		// RFC 9112 §3.2.2: the target's authority is the request's host.
		r.Host = authority
		for i := range r.Header.Fields {
			if f := &r.Header.Fields[i]; strings.EqualFold(f.Name, "Host") {
				f.Value = authority
			}
		}
	}
	if http10 && !keepAlive {
		r.Close = true
	}
	switch {
	case tes > 0 && http10:
		// RFC 9112 §6.1: a sender of HTTP/1.0 cannot frame a body with it.
		return bad("Transfer-Encoding in HTTP/1.0")
	case tes > 0 && cls > 0:
		return bad("Transfer-Encoding with Content-Length")
	case tes > 1 || tes == 1 && !EqualFoldASCII(te, "chunked"):
		return bad("Transfer-Encoding other than chunked")
	case tes == 1:
		r.ContentLength = -1
	case cls > 1:
		return bad("repeated Content-Length")
	case cls == 1:
		n, ok := ParseLength(cl)
		if !ok {
			return bad("invalid Content-Length")
		}
		r.ContentLength = n
	}
	switch {
	case upgrades == 0:
	case http10 || h2cOnly:
		// HTTP/1.0 cannot upgrade (RFC 9110 §7.8); h2c is served as
		// HTTP/1.1 (only HTTP/2 with prior knowledge is offered).
		r.Header.Del("Upgrade")
		r.Header.Del("HTTP2-Settings")
	case connUpgrade:
		r.Upgrade = true
	}
	if r.Path == "*" && r.Method != "OPTIONS" {
		return bad("asterisk-form target with " + r.Method)
	}
	return nil
}

// splitTarget sets r.Path and r.RawQuery from target: origin-form, "*",
// or absolute-form (http or https), whose authority it returns.
func splitTarget(r *Request, target string) (authority string, err error) {
	switch {
	case target[0] == '/':
	case target == "*":
		r.Path = target
		return "", nil
	default:
		scheme, rest, ok := strings.Cut(target, "://")
		if !ok || !EqualFoldASCII(scheme, "http") && !EqualFoldASCII(scheme, "https") {
			return "", bad("request target")
		}
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		authority, target = rest[:end], rest[end:]
		// Userinfo is deprecated and must be treated as an error (RFC 9110
		// §4.2.4); an empty authority is no host at all.
		if authority == "" || strings.IndexByte(authority, '@') >= 0 || !ValidHost(authority) {
			return "", bad("request target authority")
		}
		if target == "" || target[0] == '?' {
			target = "/" + target
		}
	}
	r.Path, r.RawQuery, _ = strings.Cut(target, "?")
	return authority, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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
// after it, a valid field value (ValidFieldValue) with surrounding
// whitespace removed.
func parseField(line string) (name, value string, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", bad("folded header line")
	}
	colon := TokenPrefix(line) // a name that is a token ends at the colon
	if colon == 0 || colon == len(line) || line[colon] != ':' {
		if colon = strings.IndexByte(line, ':'); colon <= 0 {
			return "", "", bad("header line without colon")
		}
		return "", "", bad("invalid header name") // whitespace before the colon too
	}
	name = line[:colon]
	value = TrimOWS(line[colon+1:])
	if !ValidFieldValue(value) {
		return "", "", bad("control character in header value")
	}
	return name, value, nil
}

// ParseLength parses a Content-Length value: 1 to 18 decimal digits, no
// sign, no list.
func ParseLength(s string) (int64, bool) {
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
