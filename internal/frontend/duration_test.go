package frontend_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// gateObserver holds the report of each request for a path it gates
// until the test lets that request go.
type gateObserver struct {
	mu    sync.Mutex
	gates map[string]chan struct{} // by request path
}

// gate holds the reports of requests for path until release is called
// (at the latest when the test ends).
func (g *gateObserver) gate(t *testing.T, path string) (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.gates[path] = ch
	g.mu.Unlock()
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release)
	return release
}

func (g *gateObserver) RequestDone(d *pipeline.Done) {
	g.mu.Lock()
	ch := g.gates[d.Request.Path]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// endLog records the paths of the requests it was told ended (a
// pipeline.EndObserver, as Dynamic IP Restrictions is).
type endLog struct {
	mu    sync.Mutex
	ended map[string]bool // by request path
}

func (l *endLog) RequestEnded(r *pipeline.Request) {
	l.mu.Lock()
	l.ended[r.Path] = true
	l.mu.Unlock()
}

func (l *endLog) saw(path string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended[path]
}

// readAnswer reads res's body: its declared length, else to its end.
// (Over HTTP/3 the stream's FIN, which carries no byte of the answer,
// comes once the handler returned; the test asks for the answer's bytes.)
func readAnswer(res *http.Response) ([]byte, error) {
	if res.ContentLength < 0 {
		return io.ReadAll(res.Body)
	}
	b := make([]byte, res.ContentLength)
	_, err := io.ReadFull(res.Body, b)
	return b, err
}

// TestDurationCoversAnswerEnd checks, on every protocol, that a request
// is reported (its Duration taken: the access log's time-taken, the
// duration metrics) only once the end of its answer was handed to the
// network, as IIS's time-taken: the client reads the whole answer while
// the report is held. The answers are small, so each server still holds
// their end when the handler returns (the lean writer the whole answer,
// HTTP/2 the END_STREAM flag, quic-go the whole small answer, which it
// sends with its length): a report
// taken before that end is sent holds the end back, and the client's
// read never ends. The request's end (pipeline.EndObserver, IIS's
// EndRequest) comes before its answer's end is sent: by the time the
// client has its answer, that request no longer counts as in progress.
func TestDurationCoversAnswerEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root")
	o := newOpener()
	g := &gateObserver{gates: map[string]chan struct{}{}}
	ends := &endLog{ended: map[string]bool{}}
	o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{g}, EndObservers: []pipeline.EndObserver{ends}}}
	s := start(t, e.config(t, allProtocolsConfig("")), o)
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			path := "/gated/" + string(m)
			release := g.gate(t, path)
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false) // gives up after 5 s
			res, err := c.Get(m.url("localhost", path))
			var body []byte
			if err == nil {
				body, err = readAnswer(res)
				res.Body.Close()
			}
			endedFirst := ends.saw(path)
			release()
			if err != nil {
				t.Fatalf("the answer's end did not reach the client while the request's report was held: "+
					"the report was taken before the end was sent (%v)", err)
			}
			if !endedFirst {
				t.Errorf("the client had its answer before the request ended (RequestEnded)")
			}
			if got := decode(t, string(body)); got.Path != path || res.StatusCode != 200 {
				t.Errorf("answer %d %+v, want 200 from the app for %s", res.StatusCode, got, path)
			}
		})
	}
}

// TestStreamCountedOutBeforeAnswerEnd: a request over HTTP/2 or HTTP/3
// stops counting against maxConnections (requests in flight) before its
// answer's end is sent, as it stops counting for Dynamic IP Restrictions:
// a client that had its answer and asks again is served, even while the
// first request's report is still held.
func TestStreamCountedOutBeforeAnswerEnd(t *testing.T) {
	t.Parallel()
	for _, m := range []mode{h2c, h2, h3} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "root")
			o := newOpener()
			g := &gateObserver{gates: map[string]chan struct{}{}}
			o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{g}}}
			s := start(t, e.config(t, allProtocolsConfig("limits: {maxConnections: 1}\n")), o)
			release := g.gate(t, "/held")
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			res, err := c.Get(m.url("localhost", "/held"))
			if err == nil {
				_, err = readAnswer(res)
				res.Body.Close()
			}
			if err == nil && res.StatusCode != 200 {
				err = fmt.Errorf("status %d", res.StatusCode)
			}
			if err != nil {
				release()
				t.Fatalf("first request: %v", err)
			}
			res, body := get(t, c, m.url("localhost", "/next"))
			release()
			if res.StatusCode != 200 {
				t.Errorf("the next request, once the client had the first's answer: %d, want 200:\n%s", res.StatusCode, body)
			}
		})
	}
}

// allProtocolsConfig is a site served over every protocol (HTTP/1.1 and h2c
// in clear, HTTP/1.1, HTTP/2 and HTTP/3 over TLS), with extra (whole YAML
// lines) at the top level.
func allProtocolsConfig(extra string) string {
	return `
shutdownTimeout: 2s
` + extra + `protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}]
`
}
