package frontend_test

import (
	"context"
	"net/http"
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

// TestClientGoneIs499 leaves a request before the app answers (an HTTP/2
// stream reset, as in a rapid-reset flood): the request-done event and the
// access log say 499, not 200.
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
	c := client(t, h2, addrOf(t, s, "https", h2), e.pki, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://localhost/hold", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to reach the app", func() bool { a := o.get("s/"); return a != nil && a.hits.Load() == 1 })
	cancel() // RST_STREAM
	if err := <-errc; err == nil {
		t.Fatal("the request was answered")
	}
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
