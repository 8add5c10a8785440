package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
)

// protocolAppEnv, set to "1", makes the test binary the app of
// TestProtocolCorpus (see TestMain); protocolRawEnv names the file where
// the app appends every byte it reads.
const (
	protocolAppEnv = "HOSTILE_PROTOCOL_APP"
	protocolRawEnv = "HOSTILE_PROTOCOL_RAW"
)

// protocolWebConfig is the app's web.config: a <location> only signed-in
// users may enter, request filtering that denies .config files, and two
// rewrite rules that map one URL onto another. allowDoubleEscaping lets a
// double-escaped path reach URL Rewrite.
const protocolWebConfig = `<configuration>
  <system.webServer>
    <aspNetCore processPath="$APP" stdoutLogEnabled="false">
      <environmentVariables>
        <environmentVariable name="` + protocolAppEnv + `" value="1" />
        <environmentVariable name="` + protocolRawEnv + `" value="$RAW" />
      </environmentVariables>
    </aspNetCore>
    <security>
      <requestFiltering allowDoubleEscaping="true">
        <fileExtensions><add fileExtension=".config" allowed="false" /></fileExtensions>
      </requestFiltering>
    </security>
    <rewrite><rules>
      <rule name="old"><match url="^old/(.*)" /><action type="Rewrite" url="new/{R:1}" /></rule>
      <rule name="aspx"><match url="^(.*)\.aspx$" /><action type="Rewrite" url="{R:1}" /></rule>
    </rules></rewrite>
  </system.webServer>
  <location path="admin">
    <system.webServer><security><authorization>
      <add accessType="Deny" users="?" />
    </authorization></security></system.webServer>
  </location>
</configuration>`

const protocolSiteYAML = `
shutdownTimeout: 5s
protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: $DIR}]
`

// appSaw is what the app of TestProtocolCorpus answers: the request as it
// read it.
type appSaw struct {
	Method string
	URI    string // the request target as received
	Host   string
	// Path is the path decoded (%2F included) and cleaned, as a static
	// file server (Python's http.server) maps it to a file.
	Path string
	// Trailers are the names of the request trailers that had a value.
	Trailers []string
	// Head is how the request's body was framed to the app.
	Head appHead
	// Body is the request body the app read.
	Body string
}

// appHead is the framing of a request as the app received it: what its
// HTTP/1.1 request head (or h2c HEADERS) said about a body.
type appHead struct {
	// TransferEncoding are the codings of Transfer-Encoding (net/http
	// takes the field out of the header).
	TransferEncoding []string `json:",omitempty"`
	// ContentLength are the Content-Length field's values.
	ContentLength []string `json:",omitempty"`
}

// protocolCase is one request of the corpus, sent the same way over every
// protocol.
type protocolCase struct {
	name           string
	method, target string // target: the path, or the authority for CONNECT
	host           string // Host or :authority
	// hostHeader sends host as a Host header field instead of :authority
	// on HTTP/2 and HTTP/3.
	hostHeader bool
	// noHost sends neither a Host header field nor :authority.
	noHost bool
	body   string
	// parts, if set, is the body sent in parts: each after the app
	// received the one before (the body is their concatenation).
	parts []string
	// noLength sends the body without its length: chunked on HTTP/1.1,
	// no content-length on HTTP/2 and HTTP/3 (as with trailers).
	noLength bool
	// sameHead: the request must reach the app framed the same way
	// (appHead) on every protocol, with the body sent.
	sameHead bool
	trailers [][2]string
	// appTrailers, if set, are the names of the request trailers the app
	// must receive with a value (sorted), on every protocol that carries
	// request trailers to the app: HTTP/2 and HTTP/3. The front door
	// drops HTTP/1.1's (dropsRequestTrailers): the app must receive none.
	appTrailers []string
	// fields are header fields sent after Host (HTTP/1.1) or the
	// pseudo-header fields (HTTP/2, HTTP/3), as given.
	fields [][2]string
	// status is what the front door must answer; 200 means the app must
	// answer, 0 that the app may answer or the front door refuse.
	status int
	// forbidden, if set, says what is wrong when the app answered with s
	// ("" for nothing).
	forbidden func(s appSaw) string
	// unsent are byte strings the app must not receive at all (its HTTP
	// server may refuse what the front door let through).
	unsent []string
	// skip names the protocols the case cannot be sent on, and why.
	skip map[string]string
}

// anonymousAdmin: the app must never serve /admin/… to an anonymous client.
func anonymousAdmin(s appSaw) string {
	if strings.HasPrefix(strings.ToLower(s.Path), "/admin/") {
		return "served " + s.Path + " to an anonymous client"
	}
	return ""
}

// servedAtAll: the app must not get the request at all (the front door
// refuses it, or resets its stream).
func servedAtAll(s appSaw) string { return "served " + strconv.Quote(s.URI) }

func webConfigFile(s appSaw) string {
	if strings.EqualFold(s.Path, "/web.config") {
		return "served /web.config"
	}
	return ""
}

var protocolCases = []protocolCase{
	// The app answers a plain request on every protocol: the others are
	// refused by the front door, not by a broken client.
	{name: "plain", method: "GET", target: "/index.txt", status: 200},
	// <location path="admin"> must hold whatever the spelling.
	{name: "admin", method: "GET", target: "/admin/secret.txt", status: 401, forbidden: anonymousAdmin},
	{name: "dotdot-encoded-slash", method: "GET", target: "/x/..%2fadmin/secret.txt", status: 400, forbidden: anonymousAdmin},
	{name: "dotdot-encoded-backslash", method: "GET", target: "/x/..%5cadmin/secret.txt", status: 400, forbidden: anonymousAdmin},
	{name: "encoded-dot-segment", method: "GET", target: "/x/%2e%2e/admin/secret.txt", status: 401, forbidden: anonymousAdmin},
	{name: "encoded-dot-segment-and-slash", method: "GET", target: "/x/%2e%2e%2fadmin/secret.txt", status: 400, forbidden: anonymousAdmin},
	// A rewritten URL is cleaned and judged again.
	{name: "rewrite-double-escaped-dots", method: "GET", target: "/old/%252e%252e/admin/secret.txt", status: 401, forbidden: anonymousAdmin},
	{name: "rewrite-double-escaped-slash", method: "GET", target: "/old/..%252fadmin/secret.txt", status: 400, forbidden: anonymousAdmin},
	{name: "web.config", method: "GET", target: "/web.config", status: 404, forbidden: webConfigFile},
	{name: "rewrite-to-web.config", method: "GET", target: "/web.config.aspx", status: 404, forbidden: webConfigFile},
	// Bytes beyond ASCII and '#' in a target reach the app percent-encoded,
	// as a client sending UTF-8 writes them: never raw in its request line.
	{name: "target-beyond-ascii", method: "GET", target: "/caf\xc3\xa9#x.txt", status: 0,
		unsent: []string{"caf\xc3\xa9", "#x"}},
	// A space or a control byte in a target is malformed on every protocol
	// (HTTP/1.1's request line could not even carry it to the app).
	{name: "target-with-space", method: "GET", target: "/a b.txt", status: 0, unsent: []string{"a b.txt"}, forbidden: servedAtAll},
	{name: "target-with-control", method: "GET", target: "/a\x01b.txt", status: 0, unsent: []string{"a\x01b.txt"}, forbidden: servedAtAll},
	// The query is part of the request target: the same holds for it.
	{name: "query-beyond-ascii", method: "GET", target: "/index.txt?q=caf\xc3\xa9#x", status: 0,
		unsent: []string{"caf\xc3\xa9", "#x"}},
	{name: "query-with-space", method: "GET", target: "/index.txt?a b", status: 0, unsent: []string{"?a b"}, forbidden: servedAtAll},
	// One request check for every protocol.
	{name: "host-with-space", method: "GET", target: "/", host: "t evil", status: 400,
		unsent: []string{"t evil"}},
	{name: "host-header-without-authority", method: "GET", target: "/", host: "t evil", hostHeader: true, status: 400,
		unsent: []string{"t evil"}, skip: map[string]string{
			"http1": "HTTP/1.1 has no :authority (host-with-space sends its Host)",
			"tls":   "HTTP/1.1 has no :authority (host-with-space sends its Host)",
		}},
	// A request names its host (RFC 9112 §3.2, RFC 9113 §8.3.1, RFC 9114
	// §4.3.1): one with neither Host nor :authority never reaches the app.
	{name: "no-host", method: "GET", target: "/", noHost: true, status: 0, forbidden: func(s appSaw) string {
		return "served a request that named no host (the app saw Host " + strconv.Quote(s.Host) + ")"
	}},
	{name: "connect", method: "CONNECT", target: "t:443", host: "t:443", status: 400,
		unsent: []string{"CONNECT "}},
	// The header rules apply to trailers: the app answers, with the
	// trailer it may get (X-Checksum) and never with the others.
	{name: "trailers", method: "POST", target: "/echo", body: "hello", trailers: [][2]string{
		{"MS-ASPNETCORE-USER", "forged"}, {"MS-ASPNETCORE-TOKEN", "forged"}, {"X-Forwarded-For", "203.0.113.9"}, {"X-Checksum", "1"},
	}, status: 200, appTrailers: []string{"X-Checksum"}, forbidden: func(s appSaw) string {
		for _, n := range s.Trailers {
			switch strings.ToLower(n) {
			case "ms-aspnetcore-user", "ms-aspnetcore-token", "x-forwarded-for":
				return "got the trailer " + n
			}
		}
		return ""
	}, unsent: []string{"forged", "203.0.113.9"}},
	// A field the client's Connection names is its connection's own (RFC
	// 9110 §7.6.1), whatever the case: never forwarded. (HTTP/2 and HTTP/3
	// refuse a request with Connection at all.)
	{name: "connection-listed-field", method: "GET", target: "/index.txt", fields: [][2]string{
		{"Connection", "x-CLIENT-hop"}, {"X-Client-Hop", "client-hop-value"},
	}, status: 0, unsent: []string{"client-hop-value"}},
	// A request reaches the app framed as it was sent, whatever the
	// protocol: one without a body (HTTP/2 ends the stream with HEADERS,
	// an HTTP/3 client right after the HEADERS frame) with no body at all,
	// not an empty chunked one; one whose body is still coming streams to
	// the app as it comes, not held back until it ends.
	{name: "get-without-body", method: "GET", target: "/echo", status: 200, sameHead: true},
	{name: "post-empty-body", method: "POST", target: "/echo", status: 200, sameHead: true},
	{name: "post-body-in-parts", method: "POST", target: "/echo", parts: []string{"first-part.", "second-part."},
		noLength: true, status: 200, sameHead: true},
	{name: "post-sized-body-in-parts", method: "POST", target: "/echo", parts: []string{"first-part.", "second-part."},
		status: 200, sameHead: true},
}

// protocolAnswer is one response as a protocol client read it.
type protocolAnswer struct {
	status  int
	fromApp bool
	saw     appSaw
}

// TestProtocolCorpus sends the same hostile requests over HTTP/1.1, HTTP/1.1
// over TLS, HTTP/2 over TLS, h2c (prior knowledge) and HTTP/3 to the real
// gatehouse binary serving a real app process, and checks that each is
// refused (or served) the same way on every protocol. The clients write
// the requests themselves (raw HTTP/1.1 bytes, HTTP/2 frames with HPACK,
// HTTP/3 frames with QPACK), as a client library would refuse to send some.
func TestProtocolCorpus(t *testing.T) {
	t.Parallel()
	g, roots, raw := startProtocolGatehouse(t, protocolSiteYAML)
	addr, tlsAddr := g.addr(t, "http"), g.addr(t, "https")
	tlsConfig := func(proto string) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{proto}}
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	protocols := []struct {
		name string
		send func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error)
	}{
		{"http1", func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return protocolAnswer{}, err
			}
			return sendHTTP1(ctx, conn, c, received)
		}},
		{"tls", func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
			conn, err := (&tls.Dialer{NetDialer: dialer, Config: tlsConfig("http/1.1")}).DialContext(ctx, "tcp", tlsAddr)
			if err != nil {
				return protocolAnswer{}, err
			}
			return sendHTTP1(ctx, conn, c, received)
		}},
		{"h2", func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
			conn, err := (&tls.Dialer{NetDialer: dialer, Config: tlsConfig("h2")}).DialContext(ctx, "tcp", tlsAddr)
			if err != nil {
				return protocolAnswer{}, err
			}
			return sendHTTP2(ctx, conn, "https", c, received)
		}},
		{"h2c", func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return protocolAnswer{}, err
			}
			return sendHTTP2(ctx, conn, "http", c, received)
		}},
		{"h3", func(ctx context.Context, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
			return sendHTTP3(ctx, tlsAddr, tlsConfig("h3"), c, received)
		}},
	}
	// heads are what the app saw of the sameHead cases, by case and
	// protocol.
	var heads sync.Map // case name + " " + protocol → appSaw
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			for i := range protocolCases {
				c := &protocolCases[i]
				t.Run(c.name, func(t *testing.T) {
					if why, ok := c.skip[p.name]; ok {
						t.Skip(why)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					before := fileSize(raw)
					// received waits until the app has read part: its
					// bytes are in what it received since before.
					received := func(ctx context.Context, part string) error {
						return waitReceived(ctx, raw, before, part)
					}
					a, err := p.send(ctx, c, received)
					// A case that lets the front door refuse may see its
					// stream reset (HTTP/2, HTTP/3): the app answers nothing.
					reset := err != nil && c.status == 0 && isStreamReset(err)
					if err != nil && !reset {
						t.Fatalf("%s %s: %v", c.method, c.target, err)
					}
					// The app read the request before it answered, or the
					// front door answered instead.
					got := readFrom(t, raw, before)
					for _, u := range c.unsent {
						if strings.Contains(strings.ToLower(got), strings.ToLower(u)) {
							t.Errorf("%s %s: the app received %q:\n%s", c.method, c.target, u, got)
						}
					}
					if reset {
						t.Logf("%s %s: refused with %v", c.method, c.target, err)
						return
					}
					if a.fromApp && c.forbidden != nil {
						if why := c.forbidden(a.saw); why != "" {
							t.Errorf("%s %s: the app answered %d and %s", c.method, c.target, a.status, why)
						}
					}
					t.Logf("%s %s: %d, from the app: %v %+v", c.method, c.target, a.status, a.fromApp, a.saw)
					if c.appTrailers != nil && a.fromApp {
						want := c.appTrailers
						if dropsRequestTrailers(p.name) {
							want = nil
						}
						if got := slices.Sorted(slices.Values(a.saw.Trailers)); !slices.Equal(got, want) {
							t.Errorf("%s %s: the app got the request trailers %q, want %q", c.method, c.target, got, want)
						}
					}
					if c.sameHead && a.fromApp {
						heads.Store(c.name+" "+p.name, a.saw)
						if body := bodyOf(c); a.saw.Body != body {
							t.Errorf("%s %s: the app read the body %q, want %q", c.method, c.target, a.saw.Body, body)
						}
					}
					switch {
					case c.status == 200 && (!a.fromApp || a.status != 200):
						t.Errorf("%s %s: %d (from the app: %v), want the app's 200", c.method, c.target, a.status, a.fromApp)
					case c.status > 200 && (a.fromApp || a.status != c.status):
						t.Errorf("%s %s: %d (from the app: %v), want the front door's %d", c.method, c.target, a.status, a.fromApp, c.status)
					case c.status == 0 && !a.fromApp && (a.status < 400 || a.status >= 500):
						t.Errorf("%s %s: the front door answered %d, want the app's answer or a refusal", c.method, c.target, a.status)
					}
				})
			}
		})
	}
	// Each sameHead case reached the app framed as over HTTP/1.1.
	for _, c := range protocolCases {
		if !c.sameHead {
			continue
		}
		ref, ok := heads.Load(c.name + " " + protocols[0].name)
		if !ok {
			continue // that protocol did not run (-run), or failed above
		}
		want := ref.(appSaw).Head
		for _, p := range protocols[1:] {
			if v, ok := heads.Load(c.name + " " + p.name); ok {
				if got := v.(appSaw).Head; !reflect.DeepEqual(got, want) {
					t.Errorf("%s: the app got %s %s over %s framed as %+v, over %s as %+v",
						c.name, c.method, c.target, p.name, got, protocols[0].name, want)
				}
			}
		}
	}
}

// dropsRequestTrailers reports whether the front door drops the request
// trailers a client sends over the protocol (TestProtocolCorpus's name):
// HTTP/1.1's lean loop checks and drops them (docs/internals.md).
func dropsRequestTrailers(proto string) bool { return proto == "http1" || proto == "tls" }

// receivedFunc waits until the app has read part of a request's body
// (the first part of protocolCase.parts, before the next is sent).
type receivedFunc func(ctx context.Context, part string) error

// waitReceived waits until the bytes the app read (the file raw, from
// offset on) hold part, or ctx ends.
func waitReceived(ctx context.Context, raw string, offset int64, part string) error {
	for {
		b, err := os.ReadFile(raw)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if bytes.Contains(b[min(offset, int64(len(b))):], []byte(part)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the app never received %q: %w", part, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// bodyOf is c's body: its parts, one after the other, or body.
func bodyOf(c *protocolCase) string {
	if len(c.parts) > 0 {
		return strings.Join(c.parts, "")
	}
	return c.body
}

// bodyParts is c's body as it is sent: its parts, or body in one part
// (none without a body).
func bodyParts(c *protocolCase) []string {
	if len(c.parts) > 0 {
		return c.parts
	}
	if c.body != "" {
		return []string{c.body}
	}
	return nil
}

// errStreamReset is the failure of an HTTP/2 request whose stream the
// server reset.
var errStreamReset = errors.New("stream reset")

// isStreamReset reports whether err is the server's reset of the
// request's stream: RST_STREAM (HTTP/2), or a QUIC stream reset or stop
// from the server (HTTP/3).
func isStreamReset(err error) bool {
	var se *quic.StreamError
	return errors.Is(err, errStreamReset) || errors.As(err, &se) && se.Remote
}

// fileSize returns the size of the file at name, 0 if there is none.
func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the file at name from offset on ("" if there is none).
func readFrom(t *testing.T, name string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

// hostOf returns the Host (or :authority) c is sent with.
func hostOf(c *protocolCase) string {
	if c.host != "" {
		return c.host
	}
	return "localhost"
}

// trailerNames is the Trailer field announcing c's trailers.
func trailerNames(c *protocolCase) string {
	names := make([]string, len(c.trailers))
	for i, f := range c.trailers {
		names[i] = f[0]
	}
	return strings.Join(names, ", ")
}

// sendHTTP1 writes c as HTTP/1.1 bytes on conn (a chunked body when it has
// trailers or no length) and reads the response. Each of c's parts but
// the first is written once the app received the one before.
func sendHTTP1(ctx context.Context, conn net.Conn, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", c.method, c.target)
	if !c.noHost {
		fmt.Fprintf(&b, "Host: %s\r\n", hostOf(c))
	}
	for _, f := range c.fields {
		fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
	}
	b.WriteString("Connection: close\r\n")
	parts := bodyParts(c)
	chunked := len(c.trailers) > 0 || c.noLength
	switch {
	case len(c.trailers) > 0:
		fmt.Fprintf(&b, "Trailer: %s\r\nTransfer-Encoding: chunked\r\n\r\n", trailerNames(c))
	case chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	case len(parts) > 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(bodyOf(c)))
	default:
		b.WriteString("\r\n")
	}
	for i, part := range parts {
		if i > 0 {
			if _, err := io.WriteString(conn, b.String()); err != nil {
				return protocolAnswer{}, fmt.Errorf("write: %w", err)
			}
			b.Reset()
			if err := received(ctx, parts[i-1]); err != nil {
				return protocolAnswer{}, err
			}
		}
		if chunked {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(part), part)
		} else {
			b.WriteString(part)
		}
	}
	if chunked {
		b.WriteString("0\r\n")
		for _, f := range c.trailers {
			fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
		}
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return protocolAnswer{}, fmt.Errorf("write: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return protocolAnswer{}, fmt.Errorf("read response: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return protocolAnswer{}, fmt.Errorf("read body: %w", err)
	}
	return answer(res.StatusCode, res.Header.Get("X-Hostile-App") != "", body)
}

// answer makes a protocolAnswer of a response's status, whether the app
// sent it, and its body.
func answer(status int, fromApp bool, body []byte) (protocolAnswer, error) {
	a := protocolAnswer{status: status, fromApp: fromApp}
	if fromApp {
		if err := json.Unmarshal(body, &a.saw); err != nil {
			return a, fmt.Errorf("the app's answer %q: %w", body, err)
		}
	}
	return a, nil
}

// requestFields are c's header fields for HTTP/2 and HTTP/3, pseudo-header
// fields first (RFC 9113 §8.3; CONNECT has only :method and :authority).
func requestFields(scheme string, c *protocolCase) [][2]string {
	f := [][2]string{{":method", c.method}}
	if c.method == "CONNECT" {
		f = append(f, [2]string{":authority", c.target})
	} else {
		f = append(f, [2]string{":scheme", scheme})
		if !c.hostHeader && !c.noHost {
			f = append(f, [2]string{":authority", hostOf(c)})
		}
		f = append(f, [2]string{":path", c.target})
	}
	if c.hostHeader && !c.noHost {
		f = append(f, [2]string{"host", hostOf(c)})
	}
	f = append(f, c.fields...)
	if body := bodyOf(c); body != "" && len(c.trailers) == 0 && !c.noLength {
		// A body with trailers has no length given, as a streaming
		// client sends it.
		f = append(f, [2]string{"content-length", strconv.Itoa(len(body))})
	}
	if len(c.trailers) > 0 {
		f = append(f, [2]string{"trailer", trailerNames(c)})
	}
	return f
}

// sendHTTP2 sends c on a new HTTP/2 connection over conn (TLS with ALPN
// h2, or cleartext with prior knowledge) frame by frame, and reads the
// response of its stream. Each of c's parts but the first is sent once
// the app received the one before.
func sendHTTP2(ctx context.Context, conn net.Conn, scheme string, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	h, err := newH2Conn(conn, h2Settings{})
	if err != nil {
		conn.Close()
		return protocolAnswer{}, err
	}
	defer h.Close()
	const id = 1
	parts, hasTrailers := bodyParts(c), len(c.trailers) > 0
	if err := h.headers(id, requestFields(scheme, c), len(parts) == 0 && !hasTrailers); err != nil {
		return protocolAnswer{}, err
	}
	for i, part := range parts {
		if i > 0 {
			if err := received(ctx, parts[i-1]); err != nil {
				return protocolAnswer{}, err
			}
		}
		if err := h.data(ctx, id, []byte(part), i == len(parts)-1 && !hasTrailers); err != nil {
			return protocolAnswer{}, err
		}
	}
	if hasTrailers {
		if err := h.headers(id, c.trailers, true); err != nil {
			return protocolAnswer{}, err
		}
	}
	st, err := h.response(ctx, id)
	if err != nil {
		return protocolAnswer{}, err
	}
	if st.wasReset {
		return protocolAnswer{}, fmt.Errorf("%w: %v", errStreamReset, st.reset)
	}
	return answer(st.status, field(st.header, "x-hostile-app") != "", st.body)
}

// HTTP/3 frame and stream types (RFC 9114 §7.2, §6.2).
const (
	h3FrameData     = 0x0
	h3FrameHeaders  = 0x1
	h3FrameSettings = 0x4
	h3StreamControl = 0x0
)

// sendHTTP3 sends c on a new HTTP/3 connection frame by frame, and reads
// the response. Each of c's parts but the first is sent once the app
// received the one before. The stream ends (FIN) right after the last
// frame, as a client ends it: for a request without a body, right after
// its HEADERS frame.
func sendHTTP3(ctx context.Context, addr string, tlsConf *tls.Config, c *protocolCase, received receivedFunc) (protocolAnswer, error) {
	conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{})
	if err != nil {
		return protocolAnswer{}, fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseWithError(0, "")
	ctrl, err := conn.OpenUniStream()
	if err != nil {
		return protocolAnswer{}, err
	}
	// The control stream: its type, then an empty SETTINGS frame.
	if _, err := ctrl.Write(quicvarint.Append(quicvarint.Append(quicvarint.Append(nil, h3StreamControl), h3FrameSettings), 0)); err != nil {
		return protocolAnswer{}, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return protocolAnswer{}, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(d)
	}
	frame := func(typ uint64, payload []byte) []byte {
		b := quicvarint.Append(quicvarint.Append(nil, typ), uint64(len(payload)))
		return append(b, payload...)
	}
	block := func(fields [][2]string) []byte {
		var b bytes.Buffer
		enc := qpack.NewEncoder(&b)
		for _, f := range fields {
			_ = enc.WriteField(qpack.HeaderField{Name: strings.ToLower(f[0]), Value: f[1]})
		}
		return b.Bytes()
	}
	req := frame(h3FrameHeaders, block(requestFields("https", c)))
	parts := bodyParts(c)
	for i, part := range parts {
		if i > 0 {
			if _, err := str.Write(req); err != nil {
				return protocolAnswer{}, fmt.Errorf("write: %w", err)
			}
			req = req[:0]
			if err := received(ctx, parts[i-1]); err != nil {
				return protocolAnswer{}, err
			}
		}
		req = append(req, frame(h3FrameData, []byte(part))...)
	}
	if len(c.trailers) > 0 {
		req = append(req, frame(h3FrameHeaders, block(c.trailers))...)
	}
	if _, err := str.Write(req); err != nil {
		return protocolAnswer{}, fmt.Errorf("write: %w", err)
	}
	// The front door may answer a refused request and stop reading before
	// the close gets out (STOP_SENDING): the answer is what counts, so a
	// failed close is not an error by itself.
	_ = str.Close()
	r := quicvarint.NewReader(str)
	status, fromApp := 0, false
	var body []byte
	for {
		typ, err := quicvarint.Read(r)
		if errors.Is(err, io.EOF) {
			return answer(status, fromApp, body)
		}
		if err != nil {
			return protocolAnswer{}, fmt.Errorf("read frame: %w", err)
		}
		n, err := quicvarint.Read(r)
		if err != nil {
			return protocolAnswer{}, fmt.Errorf("read frame: %w", err)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return protocolAnswer{}, fmt.Errorf("read frame: %w", err)
		}
		switch typ {
		case h3FrameHeaders:
			if status != 0 {
				continue // trailers
			}
			dec := qpack.NewDecoder().Decode(payload)
			for {
				f, err := dec()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return protocolAnswer{}, fmt.Errorf("QPACK: %w", err)
				}
				switch f.Name {
				case ":status":
					status, _ = strconv.Atoi(f.Value)
				case "x-hostile-app":
					fromApp = true
				}
			}
		case h3FrameData:
			body = append(body, payload...)
		}
	}
}

// gatehouse is a running gatehouse binary.
type gatehouse struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// startProtocolGatehouse builds the gatehouse binary and starts it with
// siteYAML (its $CERT, $KEY and $DIR filled in: a fresh certificate, and
// the folder of an app whose web.config runs this test binary as the
// recording app of protocolWebConfig). It returns the running Gatehouse,
// the roots that trust its certificate, and the file where the app
// records the bytes it receives.
func startProtocolGatehouse(t *testing.T, siteYAML string) (g *gatehouse, roots *x509.CertPool, raw string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build gatehouse: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	appDir := filepath.Join(dir, "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw = filepath.Join(dir, "app-received")
	webConfig := strings.NewReplacer("$APP", self, "$RAW", raw).Replace(protocolWebConfig)
	if err := os.WriteFile(filepath.Join(appDir, "web.config"), []byte(webConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, roots := writeCert(t, dir)
	cfg := filepath.Join(dir, "gatehouse.yaml")
	yaml := strings.NewReplacer("$CERT", certFile, "$KEY", keyFile, "$DIR", appDir).Replace(siteYAML)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return startGatehouse(t, bin, cfg), roots, raw
}

// startGatehouse runs bin with the site config cfg; it is stopped at the
// end of the test.
func startGatehouse(t *testing.T, bin, cfg string) *gatehouse {
	t.Helper()
	// --admin off: no admin socket in the machine's default places, where
	// another run, or the commands of a test looking for "nothing
	// running", would find it.
	args := []string{"serve", "--config", cfg, "--log-format", "json", "--log-level", "debug", "--admin", "off"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root") // CI runs as root; the app runs as we do
	}
	g := &gatehouse{logs: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			t.Errorf("gatehouse did not stop within 30s of SIGTERM")
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", g.logs.String())
		}
	})
	return g
}

// addr waits for the "listening" log record of the listener with the
// given scheme and returns its address.
func (g *gatehouse) addr(t *testing.T, scheme string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(g.logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" && strings.HasPrefix(rec.Listener, scheme+"://") && rec.Addr != "" {
				return rec.Addr
			}
		}
		select {
		case <-g.done:
			t.Fatalf("gatehouse exited before listening:\n%s", g.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s listener in the log:\n%s", scheme, g.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runProtocolApp is the app of TestProtocolCorpus: it serves on
// 127.0.0.1:$ASPNETCORE_PORT, appends every byte it reads to the file
// $HOSTILE_PROTOCOL_RAW, and answers every request with what it saw
// (appSaw, and X-Hostile-App), until SIGTERM or the module's shutdown
// request. It returns the exit status.
func runProtocolApp() int {
	raw, err := os.OpenFile(os.Getenv(protocolRawEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer raw.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("ASPNETCORE_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln := teeListener{Listener: tcp, to: raw}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/iisintegration" && strings.EqualFold(r.Header.Get("MS-ASPNETCORE-EVENT"), "shutdown") {
			w.WriteHeader(http.StatusAccepted)
			stop()
			return
		}
		body, _ := io.ReadAll(r.Body)
		s := appSaw{Method: r.Method, URI: r.RequestURI, Host: r.Host, Path: path.Clean("/" + r.URL.Path),
			Body: string(body), Head: appHead{TransferEncoding: r.TransferEncoding, ContentLength: r.Header["Content-Length"]}}
		for name, vs := range r.Trailer {
			if len(vs) > 0 {
				s.Trailers = append(s.Trailers, name)
			}
		}
		w.Header().Set("X-Hostile-App", "1")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err = srv.Serve(ln)
	stop()
	wg.Wait()
	if !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// teeListener's connections copy what they read to a file.
type teeListener struct {
	net.Listener
	to io.Writer
}

func (l teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return teeConn{Conn: c, to: l.to}, nil
}

type teeConn struct {
	net.Conn
	to io.Writer
}

func (c teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		_, _ = c.to.Write(p[:n])
	}
	return n, err
}
