package hostile_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smuggled is the request the smuggling cases hide in a body: no client in
// these tests sends it as a request, so the app must never get it as one.
const smuggled = "GET /SMUG HTTP/1.1\r\nHost: localhost\r\n\r\n"

// smuggleFirst is a request sent first on the connection, of a kind the
// lean loop once handed to net/http, which then parsed every later request
// of the connection leniently.
type smuggleFirst struct {
	name, raw string
}

var smuggleFirsts = []smuggleFirst{
	{"http10-keep-alive", "GET /first HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"},
	{"absolute-form", "GET http://localhost/first HTTP/1.1\r\nHost: localhost\r\n\r\n"},
	{"large-head", "GET /first HTTP/1.1\r\nHost: localhost\r\nX-Large: " + strings.Repeat("l", 5000) + "\r\n\r\n"},
	{"non-ascii-target", "GET /first?q=\xc3\xa4 HTTP/1.1\r\nHost: localhost\r\n\r\n"},
	{"upgrade-h2c", "GET /first HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
}

// teSpellings are the Transfer-Encoding mutations defparam/smuggler tries:
// each is the field line(s), without the final CRLF, that some parser
// reads as "chunked".
var teSpellings = []struct{ name, line string }{
	{"plain", "Transfer-Encoding: chunked"},
	{"value-upper", "Transfer-Encoding: CHUNKED"},
	{"name-lower", "transfer-encoding: chunked"},
	{"mixed-case", "TRANSFER-ENCODING: ChUnKeD"},
	{"space-before-colon", "Transfer-Encoding : chunked"},
	{"tab-before-colon", "Transfer-Encoding\t: chunked"},
	{"no-space", "Transfer-Encoding:chunked"},
	{"two-spaces", "Transfer-Encoding:  chunked"},
	{"tab-after-colon", "Transfer-Encoding:\tchunked"},
	{"trailing-tab", "Transfer-Encoding: chunked\t"},
	{"vtab-value", "Transfer-Encoding:\x0bchunked"},
	{"formfeed-value", "Transfer-Encoding:\x0cchunked"},
	{"vtab-name", "\x0bTransfer-Encoding: chunked"},
	{"nul-name", "Transfer-Encoding\x00: chunked"},
	{"nul-value", "Transfer-Encoding: chunked\x00"},
	{"chunked-identity", "Transfer-Encoding: chunked, identity"},
	{"identity-chunked", "Transfer-Encoding: identity, chunked"},
	{"quoted", "Transfer-Encoding: \"chunked\""},
	{"xchunked", "Transfer-Encoding: xchunked"},
	{"chunk", "Transfer-Encoding: chunk"},
	{"duplicate", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"},
	{"duplicate-identity-first", "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked"},
	{"duplicate-identity-last", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity"},
	{"folded-value", "Transfer-Encoding:\r\n chunked"},
	{"in-folded-line", "X-Folded: a\r\n Transfer-Encoding: chunked"},
	{"in-tab-folded-line", "X-Folded: a\r\n\tTransfer-Encoding: chunked"},
	{"bare-lf-after", "Transfer-Encoding: chunked\nX-After: a"},
	{"bare-lf-before", "X-Before: a\nTransfer-Encoding: chunked"},
	{"bare-cr-after", "Transfer-Encoding: chunked\rX-After: a"},
	{"bare-cr-before", "X-Before: a\rTransfer-Encoding: chunked"},
}

// clSpellings are the Content-Length mutations: %d is the body's length.
// A parser that reads one of them as 0 (or as anything but the length)
// takes the body for the next request.
var clSpellings = []struct{ name, line string }{
	{"duplicate-zero-first", "Content-Length: 0\r\nContent-Length: %d"},
	{"duplicate-zero-last", "Content-Length: %d\r\nContent-Length: 0"},
	{"duplicate-same", "Content-Length: %d\r\nContent-Length: %[1]d"},
	{"list", "Content-Length: %d, 0"},
	{"plus", "Content-Length: +%d"},
	{"negative", "Content-Length: -%d"},
	{"hex", "Content-Length: 0x%x"},
	{"space-before-colon", "Content-Length : %d"},
	{"vtab", "Content-Length:\x0b%d"},
	{"nul", "Content-Length: %d\x00"},
	{"folded", "Content-Length:\r\n %d"},
	{"bare-lf", "Content-Length: %d\nX-After: a"},
	{"leading-zeros", "Content-Length: 000%d"},
}

// smuggleCase is one generated request, named by its mutation.
type smuggleCase struct {
	name string
	raw  string
}

// smuggleCases generates the mutation cases: every Transfer-Encoding
// spelling as CL.TE (Content-Length covers the whole body, the chunked
// reading ends early and finds the smuggled request) and as TE.CL (the
// chunk holds the smuggled request, Content-Length ends before it), and
// every Content-Length spelling, each with the padding field before the
// smuggling field line: none, past 4 KiB, past 16 KiB.
func smuggleCases() []smuggleCase {
	var out []smuggleCase
	head := func(pad int, lines ...string) string {
		var b strings.Builder
		b.WriteString("POST /m HTTP/1.1\r\nHost: localhost\r\n")
		if pad > 0 {
			b.WriteString("X-Pad: " + strings.Repeat("p", pad) + "\r\n")
		}
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		return b.String() + "\r\n"
	}
	for _, pad := range []int{0, 4300, 17000} {
		suffix := ""
		if pad > 0 {
			suffix = "/pad-" + strconv.Itoa(pad)
		}
		for _, te := range teSpellings {
			clte := "0\r\n\r\n" + smuggled
			out = append(out, smuggleCase{"cl-te/" + te.name + suffix,
				head(pad, te.line, "Content-Length: "+strconv.Itoa(len(clte))) + clte})
			size := strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n"
			tecl := size + smuggled + "\r\n0\r\n\r\n"
			out = append(out, smuggleCase{"te-cl/" + te.name + suffix,
				head(pad, "Content-Length: "+strconv.Itoa(len(size)), te.line) + tecl})
		}
		for _, cl := range clSpellings {
			out = append(out, smuggleCase{"cl/" + cl.name + suffix,
				head(pad, fmt.Sprintf(cl.line, len(smuggled))) + smuggled})
		}
	}
	return out
}

// TestSmuggleAfterHandOff sends, on one connection, a request of a kind
// the lean loop once handed to net/http, then a generated smuggling
// mutation, then the end-of-case request, over cleartext and TLS. Each
// mutation must be refused (400, 431 or 505, and the connection closed)
// or served as exactly the one request the strict reading gives: the app
// never gets the request hidden in the body as a request of its own.
func TestSmuggleAfterHandOff(t *testing.T) {
	t.Parallel()
	fd := startFrontDoorLimits(t, "{header: 3s, body: 3s, idle: 3s}",
		"{maxAllowedContentLength: 1024, maxRequestBytes: 32768}")
	cases := smuggleCases()
	for _, p := range fd.waysIn() {
		t.Run(p.name, func(t *testing.T) {
			for _, first := range smuggleFirsts {
				var refused, served, failed int
				for _, mc := range cases {
					ok := t.Run(first.name+"/"+mc.name, func(t *testing.T) {
						fd.settle(t)
						for _, a := range fd.apps {
							a.reset()
						}
						fd.logs.Reset()
						c := &corpusCase{Name: mc.name, Raw: first.raw + mc.raw, File: "generated", Want: "fuzz"}
						resps, closed, err := exchange(p.dial, c.Raw, 15*time.Second)
						if err != nil {
							t.Fatal(err)
						}
						fd.settle(t)
						if checkSmuggle(t, fd, c, resps, closed) {
							refused++
						} else {
							served++
						}
					})
					if !ok {
						failed++
					}
				}
				t.Logf("after %s over %s: %d mutations, %d refused, %d served as one request, %d failed",
					first.name, p.name, len(cases), refused, served, failed)
			}
		})
	}
}

// checkSmuggle checks one smuggling case: what holds for any input
// (checkCase's "fuzz" checks), the hidden request never reaching the app
// as one, and one of the two outcomes. It reports whether the mutation was
// refused.
func checkSmuggle(t *testing.T, fd *frontDoor, c *corpusCase, resps []response, closed bool) (refused bool) {
	t.Helper()
	checkCase(t, fd, c, "fuzz", resps, closed)
	var targets []string
	for _, path := range []string{"/", "/api"} {
		_, completed, aborted := fd.apps[path].snapshot()
		for _, s := range append(completed, aborted...) {
			targets = append(targets, s.Target)
		}
	}
	var got []string
	for _, r := range resps {
		got = append(got, fmt.Sprintf("%d %q %s", r.Status, r.Recorder, r.Seen.Target))
	}
	report := fmt.Sprintf("sent %q\nresponses %v, closed %v\napp got %q", clipMiddle(c.Raw), got, closed, targets)
	for _, target := range targets {
		if strings.Contains(target, "SMUG") {
			t.Fatalf("the app got the request hidden in a body as a request: %s\n%s", target, report)
		}
	}
	if len(resps) == 0 || resps[0].Recorder == "" || !strings.HasPrefix(resps[0].Seen.Target, "/first") {
		t.Fatalf("the first request was not served by the app as /first\n%s", report)
	}
	switch {
	case len(resps) == 2 && resps[1].Recorder == "":
		// Refused: the front door's answer, then the close; only the first
		// request reached the app.
		switch resps[1].Status {
		case 400, 431, 505:
		default:
			t.Errorf("refused with %d, want 400, 431 or 505\n%s", resps[1].Status, report)
		}
		if !closed {
			t.Errorf("connection left open after the refusal\n%s", report)
		}
		if len(targets) != 1 {
			t.Errorf("the app got %d requests, want only the first\n%s", len(targets), report)
		}
		return true
	case len(resps) == 3 && resps[1].Recorder != "" && resps[2].Recorder != "":
		// Served: exactly the requests the client sent, in step.
		if resps[1].Seen.Target != "/m" || resps[2].Seen.Target != "/__end" || len(targets) != 3 {
			t.Errorf("served out of step\n%s", report)
		}
		if body := resps[1].Seen.Body; !strings.Contains(body, "GET /SMUG") {
			t.Errorf("served /m without the body that holds the hidden request: %q\n%s", body, report)
		}
		return false
	}
	t.Errorf("neither refused nor served as one request\n%s", report)
	return false
}

// clipMiddle shortens the padding in s for messages.
func clipMiddle(s string) string {
	for _, ch := range []string{"l", "p"} {
		long := strings.Repeat(ch, 100)
		for strings.Contains(s, long+long) {
			s = strings.Replace(s, long+long, long, 1)
		}
	}
	return s
}
