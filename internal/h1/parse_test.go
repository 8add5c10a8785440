package h1

import (
	"errors"
	"strings"
	"testing"
)

// TestParseForms: the request forms the lean loop serves besides plain
// HTTP/1.1 origin-form, and the statuses of those it refuses.
func TestParseForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, head string
		status     int    // the refusal's status; 0: accepted
		want       string // accepted: Proto Host Path?RawQuery close upgrade
	}{
		{"http10", "GET /a HTTP/1.0\r\n\r\n", 0, "HTTP/1.0  /a? close=true upgrade=false"},
		{"http10 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, "HTTP/1.0  /a? close=false upgrade=false"},
		{"http10 TE", "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
		{"http10 upgrade ignored", "GET /a HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade, keep-alive\r\n\r\n", 0, "HTTP/1.0  /a? close=false upgrade=false"},
		{"http12 as 1.1", "GET /a HTTP/1.2\r\nHost: h\r\n\r\n", 0, "HTTP/1.1 h /a? close=false upgrade=false"},
		{"http2 line", "GET /a HTTP/2.0\r\nHost: h\r\n\r\n", 505, ""},
		{"http09", "GET /a HTTP/0.9\r\nHost: h\r\n\r\n", 505, ""},
		{"version 1.10", "GET /a HTTP/1.10\r\nHost: h\r\n\r\n", 400, ""},
		{"absolute-form", "GET http://a.test:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 0, "HTTP/1.1 a.test:8080 /p?q close=false upgrade=false"},
		{"absolute-form no path", "GET https://a.test?q HTTP/1.1\r\nHost: a.test\r\n\r\n", 0, "HTTP/1.1 a.test /?q close=false upgrade=false"},
		{"absolute-form userinfo", "GET http://u:p@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
		{"absolute-form other scheme", "GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
		{"absolute-form empty authority", "GET http:///p HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
		{"absolute-form still needs Host", "GET http://a.test/ HTTP/1.1\r\n\r\n", 400, ""},
		{"options asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, "HTTP/1.1 h *? close=false upgrade=false"},
		{"get asterisk", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
		{"non-ASCII", "GET /\xc3\xa4#x?\xff HTTP/1.1\r\nHost: h\r\n\r\n", 0, "HTTP/1.1 h /%C3%A4%23x?%FF close=false upgrade=false"},
		{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400, ""},
		{"expect unknown", "GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n", 417, ""},
		{"websocket", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=true"},
		{"upgrade without Connection", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=false"},
		{"h2c ignored", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMA\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=false"},
		// Tokens compare by ASCII case only: strings.EqualFold would take
		// the Kelvin sign (U+212A) for k and the long s (U+017F) for s.
		{"TE chunked, Kelvin sign", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun\u212aed\r\n\r\n", 400, ""},
		{"TE CHUNKED", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=false"},
		{"close, long s", "GET / HTTP/1.1\r\nHost: h\r\nConnection: clo\u017fe\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=false"},
		{"http10 keep-alive, Kelvin sign", "GET /a HTTP/1.0\r\nConnection: \u212aeep-alive\r\n\r\n", 0, "HTTP/1.0  /a? close=true upgrade=false"},
		{"absolute-form, long s", "GET http\u017f://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", 400, ""},
		{"h2c in two fields ignored", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nUpgrade: H2C\r\nConnection: Upgrade\r\n\r\n", 0, "HTTP/1.1 h /? close=false upgrade=false"},
	}
	for _, tt := range tests {
		var r Request
		err := Parse(tt.head, &r)
		var e *Error
		switch {
		case tt.status != 0:
			if !errors.As(err, &e) || e.Status != tt.status {
				t.Errorf("%s: %v, want a %d refusal", tt.name, err, tt.status)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v, want it accepted", tt.name, err)
			continue
		}
		got := r.Proto + " " + r.Host + " " + r.Path + "?" + r.RawQuery
		got += " close=" + map[bool]string{true: "true", false: "false"}[r.Close]
		got += " upgrade=" + map[bool]string{true: "true", false: "false"}[r.Upgrade]
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
		if h := r.Header.Get("Host"); h != "" && h != r.Host {
			t.Errorf("%s: Host field %q, request host %q", tt.name, h, r.Host)
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "h2c") || r.Header.Get("HTTP2-Settings") != "" {
			t.Errorf("%s: h2c upgrade fields kept", tt.name)
		}
	}
}

// TestScanHeadResume: a scan resumed after more bytes arrived finds what a
// scan of the whole finds, a CR at the end of the first part included.
func TestScanHeadResume(t *testing.T) {
	t.Parallel()
	for _, head := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		wantN, wantErr := ScanHead([]byte(head), 0)
		for cut := 1; cut < len(head); cut++ {
			n, err := ScanHead([]byte(head[:cut]), 0)
			if n == 0 && err == nil {
				n, err = ScanHead([]byte(head), cut)
			}
			if n != wantN || (err == nil) != (wantErr == nil) {
				t.Errorf("%q cut at %d: %d, %v; want %d, %v", head, cut, n, err, wantN, wantErr)
			}
		}
	}
}

// TestParseAllocs: scanning and parsing a common head allocates nothing
// (the field slice is reused between requests).
func TestParseAllocs(t *testing.T) {
	head := "POST /a/b?c=d HTTP/1.1\r\nHost: a.test\r\nUser-Agent: x\r\nAccept: */*\r\n" +
		"Connection: keep-alive\r\nContent-Length: 5\r\n\r\n"
	buf := []byte(head)
	r := Request{Header: Header{Fields: make([]Field, 0, 16)}}
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := ScanHead(buf, 0); n != len(buf) || err != nil {
			t.Fatalf("ScanHead = %d, %v", n, err)
		}
		r.Reset()
		if err := Parse(head, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per head, want 0", allocs)
	}
}
