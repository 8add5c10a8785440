package hostile_test

import (
	"fmt"
	"strconv"
	"strings"
)

// wireRequest is one request as strictSplit found it in the bytes an app
// received.
type wireRequest struct {
	Line   string
	Header [][2]string
	Body   string
}

// strictSplit splits the bytes an app received into requests by RFC 9112's
// rules, read strictly: CRLF line ends only, no obs-fold, no whitespace in
// or after a field name, at most one Content-Length (digits only), a
// Transfer-Encoding only if it is exactly "chunked" and there is no
// Content-Length, well-formed chunks and trailers. It returns an error
// naming the first thing a lenient parser could read differently.
func strictSplit(raw string) ([]wireRequest, error) {
	var out []wireRequest
	for len(raw) > 0 {
		head, rest, ok := strings.Cut(raw, "\r\n\r\n")
		if !ok {
			return out, fmt.Errorf("request %d: head not ended by CRLF CRLF: %q", len(out)+1, clip(raw))
		}
		lines := strings.Split(head, "\r\n")
		req := wireRequest{Line: lines[0]}
		if strings.ContainsAny(head, "\n\r\x00") && strings.Count(head, "\r") != strings.Count(head, "\n") {
			return out, fmt.Errorf("request %d: bare CR or LF in head %q", len(out)+1, clip(head))
		}
		if f := strings.Split(req.Line, " "); len(f) != 3 || f[2] != "HTTP/1.1" {
			return out, fmt.Errorf("request %d: request line %q", len(out)+1, req.Line)
		}
		var cl, te []string
		for _, l := range lines[1:] {
			name, value, ok := strings.Cut(l, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return out, fmt.Errorf("request %d: field line %q", len(out)+1, l)
			}
			if l[0] == ' ' || l[0] == '\t' {
				return out, fmt.Errorf("request %d: obs-fold %q", len(out)+1, l)
			}
			value = strings.Trim(value, " \t")
			req.Header = append(req.Header, [2]string{name, value})
			switch strings.ToLower(name) {
			case "content-length":
				cl = append(cl, value)
			case "transfer-encoding":
				te = append(te, value)
			}
		}
		switch {
		case len(te) > 0 && len(cl) > 0:
			return out, fmt.Errorf("request %d: both Transfer-Encoding and Content-Length", len(out)+1)
		case len(te) > 1 || len(te) == 1 && te[0] != "chunked":
			return out, fmt.Errorf("request %d: Transfer-Encoding %q", len(out)+1, te)
		case len(cl) > 1:
			return out, fmt.Errorf("request %d: Content-Length %q", len(out)+1, cl)
		}
		switch {
		case len(te) == 1:
			body, after, err := readChunked(rest)
			if err != nil {
				return out, fmt.Errorf("request %d: %v", len(out)+1, err)
			}
			req.Body, rest = body, after
		case len(cl) == 1:
			n, err := strconv.ParseUint(cl[0], 10, 63)
			if err != nil || strings.Trim(cl[0], "0123456789") != "" {
				return out, fmt.Errorf("request %d: Content-Length %q", len(out)+1, cl[0])
			}
			if uint64(len(rest)) < n {
				return out, fmt.Errorf("request %d: body shorter (%d) than Content-Length %d", len(out)+1, len(rest), n)
			}
			req.Body, rest = rest[:n], rest[n:]
		}
		out = append(out, req)
		raw = rest
	}
	return out, nil
}

// readChunked reads a chunked body strictly from s; it returns the body
// and what follows the last chunk and trailer section.
func readChunked(s string) (body, rest string, err error) {
	var b strings.Builder
	for {
		line, after, ok := strings.Cut(s, "\r\n")
		if !ok {
			return "", "", fmt.Errorf("chunk size line not ended: %q", clip(s))
		}
		size, _, _ := strings.Cut(line, ";")
		if size == "" || strings.Trim(size, "0123456789abcdefABCDEF") != "" || len(size) > 15 {
			return "", "", fmt.Errorf("chunk size %q", line)
		}
		n, _ := strconv.ParseUint(size, 16, 63)
		s = after
		if n == 0 {
			break
		}
		if uint64(len(s)) < n+2 || s[n:n+2] != "\r\n" {
			return "", "", fmt.Errorf("chunk of %d bytes not followed by CRLF: %q", n, clip(s))
		}
		b.WriteString(s[:n])
		s = s[n+2:]
	}
	for { // trailer section
		line, after, ok := strings.Cut(s, "\r\n")
		if !ok {
			return "", "", fmt.Errorf("trailer section not ended: %q", clip(s))
		}
		s = after
		if line == "" {
			return b.String(), s, nil
		}
		if name, _, ok := strings.Cut(line, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
			return "", "", fmt.Errorf("trailer line %q", line)
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// spoofed reports whether a header name the app received is one a client
// must not be able to send to it: an underscore spelling of a header
// Gatehouse sets or strips, or an h2c upgrade.
func spoofed(name, value string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	if strings.Contains(name, "_") && (strings.HasPrefix(n, "ms-aspnetcore") || n == "x-forwarded-for" || n == "x-forwarded-proto" ||
		n == "x-forwarded-host" || n == "content-length" || n == "transfer-encoding") {
		return true
	}
	switch n {
	case "upgrade":
		return !strings.EqualFold(value, "websocket")
	case "http2-settings", "proxy-connection", "keep-alive", "proxy-authorization":
		return true
	}
	return false
}
