package frontend_test

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// goneLog records the Done events of an application.
type goneLog struct {
	mu   sync.Mutex
	done []pipeline.Done
}

func (l *goneLog) RequestDone(d *pipeline.Done) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *d
	c.Request = nil
	l.done = append(l.done, c)
}

func (l *goneLog) all() []pipeline.Done {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pipeline.Done(nil), l.done...)
}

// TestClientGoneIs499 leaves a request before the app answers: the
// request-done event and the access log say 499, not 200. Over TLS (the
// net/http path, which notices a client that leaves while the app works;
// the lean path notices it only when the answer cannot be written).
func TestClientGoneIs499(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root")
	o := newOpener()
	var gone goneLog
	o.chains = map[string]*pipeline.Chain{"s/": {Observers: []pipeline.Observer{&gone}}}
	s := start(t, e.config(t, `
shutdownTimeout: 2s
sites:
  - name: s
    bindings: [{name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}]
    applications: [{path: /, dir: root}]
    accessLog: {path: access.jsonl, format: json}
`), o)
	c, err := tls.Dial("tcp", addrOf(t, s, "https", https1), &tls.Config{RootCAs: e.pki.caPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to reach the app", func() bool { a := o.get("s/"); return a != nil && a.hits.Load() == 1 })
	c.Close()
	waitFor(t, "the request-done event", func() bool { return len(gone.all()) == 1 })
	d := gone.all()[0]
	if d.Status != 499 || !d.ClientGone {
		t.Errorf("Done: status %d, ClientGone %v; want 499, true", d.Status, d.ClientGone)
	}
	var line string
	waitFor(t, "the access log line", func() bool {
		b, _ := os.ReadFile(filepath.Join(e.dir, "access.jsonl"))
		line = string(b)
		return strings.Contains(line, "/hold")
	})
	if !strings.Contains(line, `"status":499`) {
		t.Errorf("access log: %s", line)
	}
}
