package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// TestReadHead reads response heads whole (the rest of the head is taken
// from the reader's buffer at once) and one byte per read (line by line):
// both give the same head and leave what follows it in the reader.
func TestReadHead(t *testing.T) {
	tests := []struct{ name, head, after string }{
		{"CRLF", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\n", "hi"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", "hi"},
		{"no fields", "HTTP/1.1 204 No Content\r\n\r\n", ""},
		{"no fields, bare LF", "HTTP/1.1 204 No Content\n\n", "HTTP/1.1 200 OK\r\n\r\n"},
		{"CR inside a line", "HTTP/1.1 200 OK\r\nX-A: \r1\r\n\r\n", "x"},
		{"a 1xx head, then the final one", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		for _, way := range []string{"whole", "one byte per read"} {
			t.Run(tt.name+", "+way, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.head + tt.after)
				if way != "whole" {
					r = iotest.OneByteReader(r)
				}
				br := bufio.NewReaderSize(r, connReadSize)
				head, started, err := readHead(br, nil)
				if err != nil || !started || string(head) != tt.head {
					t.Fatalf("readHead = %q, %v, %v; want %q", head, started, err, tt.head)
				}
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != tt.after {
					t.Errorf("left %q, %v; want %q", rest, err, tt.after)
				}
			})
		}
	}
}

// TestReadHeadIncomplete: a head cut off before its empty line is an
// unexpected EOF, whether it came whole or piece by piece.
func TestReadHeadIncomplete(t *testing.T) {
	for _, s := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r", "HTTP/1.1 200 OK\r\n"} {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(s)
			if one {
				r = iotest.OneByteReader(r)
			}
			if _, _, err := readHead(bufio.NewReaderSize(r, connReadSize), nil); err != io.ErrUnexpectedEOF {
				t.Errorf("readHead(%q, one byte per read %v): %v, want io.ErrUnexpectedEOF", s, one, err)
			}
		}
	}
}

// TestReadResponse reads answers with readResponse, whole (parsed in the
// reader's buffer) and one byte per read (read line by line, then
// parsed), and with readHead and parseHead: the same head, the same fault
// or none, the same bytes left in the reader. The reader's buffer is then
// filled with other bytes: the parsed strings must not point into it.
func TestReadResponse(t *testing.T) {
	heads := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\nhi",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 204 No Content\n\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive, x\r\nConnection: y\r\nContent-Length: 3\r\n\r\nold",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-a ,, bad tok\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200\r\nX-Empty:\r\nX-Spaces:  a b  \r\n\r\n",
		// Faults, each as the first and as a later line of a whole head.
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\x002\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: \r1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 20x OK\r\n\r\n",
		"HTTP/1.1 099 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\r\n\r\n",
		// Not whole: an unexpected EOF, a fault before the cut included.
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r",
		"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Len",
		"HTTP/2.0 200 OK\r\n",
		"HTTP/1.1 200",
		"",
	}
	for _, s := range heads {
		for _, one := range []bool{false, true} {
			t.Run(fmt.Sprintf("%.40q, one byte per read %v", s, one), func(t *testing.T) {
				reader := func() *bufio.Reader {
					var r io.Reader = strings.NewReader(s)
					if one {
						r = iotest.OneByteReader(r)
					}
					return bufio.NewReaderSize(r, connReadSize)
				}
				var want response
				wbr := reader()
				head, wantStarted, wantErr := readHead(wbr, nil)
				if wantErr == nil {
					wantErr = parseHead(string(head), &want)
				}
				wantRest, _ := io.ReadAll(wbr)

				var got response
				br := reader()
				_, started, err := readResponse(br, nil, &got)
				rest, _ := io.ReadAll(br)
				br.Reset(strings.NewReader(strings.Repeat("#", len(s)+1)))
				if _, err := br.Peek(len(s) + 1); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(err) != fmt.Sprint(wantErr) || started != wantStarted {
					t.Fatalf("readResponse: started %v, %v; want %v, %v", started, err, wantStarted, wantErr)
				}
				if err == nil && !reflect.DeepEqual(got, want) {
					t.Errorf("readResponse parsed %+v, want %+v", got, want)
				}
				if string(rest) != string(wantRest) {
					t.Errorf("left %q, want %q", rest, wantRest)
				}
			})
		}
	}
}

// TestFieldLines compares response.field, which checks the name as it
// looks for the colon (h1.TokenPrefix), with the rule in two steps (the
// first colon, then the name before it a token): the same field or the
// same fault for every line of up to 5 bytes of a, -, colon, space, tab,
// CR, NUL and obs-text.
func TestFieldLines(t *testing.T) {
	twoSteps := func(line string) (field, error) {
		if line[0] == ' ' || line[0] == '\t' {
			return field{}, malformed("folded header line")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return field{}, malformed("header line %q", trunc(line))
		}
		name := line[:colon]
		if !h1.IsToken(name) {
			return field{}, malformed("header name %q", trunc(name))
		}
		value := h1.TrimOWS(line[colon+1:])
		if !h1.ValidFieldValue(value) {
			return field{}, malformed("value of %s", name)
		}
		return field{name, value}, nil
	}
	alphabet := "a-: \t\r\x00\x80"
	var walk func(line string)
	walk = func(line string) {
		if line != "" {
			var res response
			err := res.field(line, &headState{})
			var got field
			if len(res.fields) == 1 {
				got = res.fields[0]
			}
			want, werr := twoSteps(line)
			if got != want || fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Fatalf("field(%q) = %q, %v; want %q, %v", line, got, err, want, werr)
			}
		}
		if len(line) == 5 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			walk(line + alphabet[i:i+1])
		}
	}
	walk("")
}

// TestCopyHeader copies answers into an empty client header (each key
// stored without a lookup until one repeats) and into one a stage had set
// a field in: the same fields, repeated ones in order under one key,
// equal Content-Length values once, hop-by-hop fields dropped.
func TestCopyHeader(t *testing.T) {
	tests := []struct {
		name   string
		fields []field
		want   http.Header // beyond the field set before, in the second way
	}{
		{"each once", []field{{"Server", "Kestrel"}, {"Date", "d"}, {"content-length", "2"}, {"X-XSS-Protection", "0"}},
			http.Header{"Server": {"Kestrel"}, "Date": {"d"}, "Content-Length": {"2"}, "X-XSS-Protection": {"0"}}},
		{"repeated", []field{{"Set-Cookie", "a=1"}, {"Server", "Kestrel"}, {"Set-Cookie", "b=2"}, {"set-cookie", "c=3"}, {"Set-Cookie", "d=4"}},
			http.Header{"Set-Cookie": {"a=1", "b=2", "d=4"}, "set-cookie": {"c=3"}, "Server": {"Kestrel"}}},
		{"equal lengths, hop-by-hop", []field{{"Content-Length", "2"}, {"Keep-Alive", "timeout=5"}, {"Content-Length", "2"}, {"Upgrade", "x"}},
			http.Header{"Content-Length": {"2"}}},
	}
	for _, tt := range tests {
		for _, preset := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, field set before %v", tt.name, preset), func(t *testing.T) {
				w := httptest.NewRecorder()
				want := tt.want.Clone()
				if preset {
					w.Header().Set("Alt-Svc", `h3=":443"`)
					want.Set("Alt-Svc", `h3=":443"`)
				}
				ex := &exchange{h: &Handler{}, w: w, res: response{status: 200, fields: tt.fields, contentLength: -1}}
				ex.copyHeader()
				if got := w.Header(); !reflect.DeepEqual(got, want) {
					t.Errorf("header = %v, want %v", got, want)
				}
			})
		}
	}
}

// tinyHead and tinyAnswer are an answer of the bench's testapp.
const (
	tinyHead = "HTTP/1.1 200 OK\r\nServer: Kestrel\r\nX-Pid: 1234\r\nDate: Mon, 07 Dec 2026 07:06:02 GMT\r\n" +
		"Content-Length: 29\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	tinyAnswer = tinyHead + "Hello from testapp pid=1234\r\n"
)

// answerHeads reads, parses and copies tinyAnswer's head into a client
// header, again and again, the way the client does (send, copyHeader).
type answerHeads struct {
	sr *strings.Reader
	br *bufio.Reader
	w  *httptest.ResponseRecorder
	ex *exchange
}

func newAnswerHeads() *answerHeads {
	sr := strings.NewReader(tinyAnswer)
	w := httptest.NewRecorder()
	return &answerHeads{sr: sr, br: bufio.NewReaderSize(sr, connReadSize), w: w,
		ex: &exchange{h: &Handler{}, w: w, head: make([]byte, 0, 1024), res: response{fields: make([]field, 0, 16)}}}
}

func (a *answerHeads) one(tb testing.TB) {
	a.sr.Reset(tinyAnswer)
	a.br.Reset(a.sr)
	clear(a.w.Header())
	ex := a.ex
	if _, _, err := readResponse(a.br, ex.head[:0], &ex.res); err != nil || ex.res.status != 200 || len(ex.res.fields) != 5 {
		tb.Fatalf("readResponse = %v, %+v", err, ex.res)
	}
	ex.copyHeader()
}

// TestAnswerHeadAllocs: reading, parsing and copying a tiny answer's head
// into the client's (reused) header allocates twice: the head as a string
// and the values of its fields. Neither the copy without lookups nor the
// head taken from the read buffer at once may add to that.
func TestAnswerHeadAllocs(t *testing.T) {
	a := newAnswerHeads()
	if allocs := testing.AllocsPerRun(100, func() { a.one(t) }); allocs != 2 {
		t.Errorf("%v allocations per answer head, want 2", allocs)
	}
	if h := a.w.Header(); h.Get("Content-Type") != "text/plain; charset=utf-8" || len(h) != 5 {
		t.Errorf("header %v", h)
	}
}

// BenchmarkAnswerHead: the client's work on a tiny answer's head (read,
// parse, copy to the client's header), with its allocations.
func BenchmarkAnswerHead(b *testing.B) {
	a := newAnswerHeads()
	b.ReportAllocs()
	for b.Loop() {
		a.one(b)
	}
}

// TestResponseTokensASCII: an answer's Transfer-Encoding is chunked by
// ASCII case only, so an app's "chun\u212aed" (the Kelvin sign, which
// strings.EqualFold takes for a k) is a malformed answer, not a chunked one.
func TestResponseTokensASCII(t *testing.T) {
	t.Parallel()
	var res response
	if err := parseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n", &res); err != nil || !res.chunked {
		t.Fatalf("CHUNKED: %v, chunked %v; want a chunked answer", err, res.chunked)
	}
	if err := parseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n", &res); !errors.Is(err, errMalformed) {
		t.Fatalf("chun\\u212aed: %v (chunked %v); want a malformed answer", err, res.chunked)
	}
}
