package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// leanRead parses one request from data the way the lean loop does: the
// head must fit BufSize; the body is read whole. It returns the request,
// its body, the bytes after it, or a refusal / hand-off error.
func leanRead(data []byte) (*Request, []byte, []byte, error) {
	if len(data) > BufSize {
		data = data[:BufSize]
	}
	n, err := ScanHead(data, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	if n == 0 {
		return nil, nil, nil, io.ErrUnexpectedEOF
	}
	var r Request
	if err := Parse(string(data[:n]), &r); err != nil {
		return nil, nil, nil, err
	}
	in := NewInput(&sliceConn{r: bytes.NewReader(data[n:])}, nil)
	var b Body
	b.Reset(in, r.ContentLength)
	body, err := io.ReadAll(&b)
	if err != nil {
		return &r, nil, nil, err
	}
	rest, _ := io.ReadAll(in)
	return &r, body, rest, nil
}

// goRead parses the same bytes with net/http's server-side reader.
func goRead(data []byte) (*http.Request, []byte, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return r, nil, nil, err
	}
	rest, _ := io.ReadAll(br)
	return r, body, rest, nil
}

// FuzzParse is the differential test of the lean parser against
// net/http: whatever the lean path accepts, net/http must read the same
// way — method, target, Host, header values, body and where the next
// request starts. Refusals and hand-offs are always safe; the seed corpus
// (testdata/fuzz/FuzzParse) runs in go test.
func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lr, lbody, lrest, lerr := leanRead(data)
		if lerr != nil {
			var e *Error
			if lr == nil && !errors.As(lerr, &e) && !errors.Is(lerr, ErrHandOff) && lerr != io.ErrUnexpectedEOF {
				t.Fatalf("head error %v is neither a refusal nor a hand-off", lerr)
			}
			return // refused, handed off, or incomplete: never forwarded
		}
		gr, gbody, grest, gerr := goRead(data)
		if gerr != nil {
			t.Fatalf("lean accepted what net/http rejects (%v): %q", gerr, data)
		}
		if gr.Method != lr.Method || gr.Host != lr.Host {
			t.Fatalf("method/host: lean %q %q, net/http %q %q", lr.Method, lr.Host, gr.Method, gr.Host)
		}
		target := lr.Path
		if lr.RawQuery != "" || strings.Contains(gr.RequestURI, "?") {
			target += "?" + lr.RawQuery
		}
		if want := originForm(gr.RequestURI); want != target {
			t.Fatalf("target: lean %q, net/http %q", target, gr.RequestURI)
		}
		if (gr.ProtoMinor == 0) != (lr.Proto == "HTTP/1.0") {
			t.Fatalf("version: lean %s, net/http %s", lr.Proto, gr.Proto)
		}
		if gr.Close != lr.Close {
			t.Fatalf("close: lean %v, net/http %v", lr.Close, gr.Close)
		}
		for _, fl := range lr.Header.Fields {
			k := http.CanonicalHeaderKey(fl.Name)
			if k == "Host" || k == "Transfer-Encoding" { // net/http moves TE to r.TransferEncoding
				continue
			}
			found := false
			for _, v := range gr.Header[k] {
				if v == fl.Value {
					found = true
				}
			}
			if !found {
				t.Fatalf("field %s: lean %q, net/http %q", k, fl.Value, gr.Header[k])
			}
		}
		if !bytes.Equal(lbody, gbody) || !bytes.Equal(lrest, grest) {
			t.Fatalf("framing differs: lean body %q rest %q; net/http body %q rest %q", lbody, lrest, gbody, grest)
		}
	})
}

// originForm is the target uri as the lean parser gives it: an
// absolute-form target's path and query, with bytes beyond ASCII and '#'
// percent-encoded.
func originForm(uri string) string {
	if uri != "*" && !strings.HasPrefix(uri, "/") {
		_, rest, _ := strings.Cut(uri, "://")
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			uri = rest[i:]
		} else {
			uri = ""
		}
		if uri == "" || uri[0] == '?' {
			uri = "/" + uri
		}
	}
	var b strings.Builder
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c >= 0x80 || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// sliceConn is a net.Conn reading from a byte slice, for leanRead.
type sliceConn struct {
	nopConn
	r io.Reader
}

func (c *sliceConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var seeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a/b?c=d&e HTTP/1.1\r\nHost: a.test:8080\r\nX: y\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n y\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.0\r\n\r\n",
	"GET http://a:80 HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET https://a/b?c#d HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /\xc3\xa4?\xc3\xa4 HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
}

// nopConn is the rest of a net.Conn.
type nopConn struct{}

func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nil }
func (nopConn) RemoteAddr() net.Addr             { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
