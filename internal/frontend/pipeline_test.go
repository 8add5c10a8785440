package frontend_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

const stagesConfig = `
shutdownTimeout: 2s
protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}, {path: /api, dir: api}]
    accessLog: {path: access.jsonl, format: json}
`

// doneLog records the Done events an app's chain observes.
type doneLog struct {
	mu   sync.Mutex
	seen []string // "METHOD path status.sub"
}

func (l *doneLog) RequestDone(d *pipeline.Done) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, d.Request.Method+" "+d.Request.Path+" "+(&pipeline.Result{Status: d.Status, Substatus: d.Substatus}).Code())
}

// TestStages runs an application's stages over every protocol: a refusal
// through the funnel with its substatus in the access log, a redirect, a
// rewrite that routes to another application, a header added on the way
// out, and the request-done event for each request.
func TestStages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root", "api")
	o := newOpener()
	var rootDone doneLog
	o.chains = map[string]*pipeline.Chain{
		"s/": {
			In: []pipeline.Stage{pipeline.StageFunc(func(r *pipeline.Request) *pipeline.Result {
				switch {
				case strings.HasPrefix(r.Path, "/deny"):
					return pipeline.Refuse("test", http.StatusForbidden, 6, "denied by the test stage")
				case r.Path == "/moved":
					return &pipeline.Result{Stage: "test", Status: http.StatusMovedPermanently, Location: "/new?" + r.RawQuery}
				case r.Path == "/old":
					r.Rewrite("/api/new", "from=old")
				}
				return nil
			}), pipeline.StageFunc(func(r *pipeline.Request) *pipeline.Result {
				// The root app's authentication: it must not judge a
				// request rewritten into /api.
				if strings.HasPrefix(r.Path, "/api/") {
					return pipeline.Refuse("auth", http.StatusUnauthorized, 0, "the root app's later stage ran on /api's request")
				}
				return nil
			})},
			Out:       []pipeline.OutStage{outHeader{"X-Root-Stage", "out"}},
			Observers: []pipeline.Observer{&rootDone},
		},
	}
	s := start(t, e.config(t, stagesConfig), o)
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)

			res, body := get(t, c, m.url("localhost", "/deny/x"))
			if res.StatusCode != 403 || !strings.Contains(body, "HTTP Error 403.6 - Forbidden") {
				t.Errorf("/deny: %d %q", res.StatusCode, body)
			}
			if strings.Contains(body, "denied by the test stage") {
				t.Errorf("the reason for the log reached the client: %q", body)
			}

			res, _ = get(t, c, m.url("localhost", "/moved?q=1"))
			if res.StatusCode != 301 || res.Header.Get("Location") != "/new?q=1" {
				t.Errorf("/moved: %d Location %q", res.StatusCode, res.Header.Get("Location"))
			}

			res, body = get(t, c, m.url("localhost", "/old?x=y"))
			if res.StatusCode != 200 {
				t.Fatalf("/old: %d %q", res.StatusCode, body)
			}
			if got := decode(t, body); got.App != "/api" || got.Path != "/api/new" || got.Query != "from=old" {
				t.Errorf("/old reached %+v, want app /api, path /api/new, query from=old", got)
			}
			if res.Header.Get("X-Root-Stage") != "" {
				t.Errorf("the root app's outbound stage ran for a request the /api app served")
			}

			res, body = get(t, c, m.url("localhost", "/page"))
			if res.StatusCode != 200 || decode(t, body).App != "/" {
				t.Fatalf("/page: %d %q", res.StatusCode, body)
			}
			if got := res.Header.Get("X-Root-Stage"); got != "out" {
				t.Errorf("X-Root-Stage = %q, want the outbound stage's header", got)
			}
		})
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	rootDone.mu.Lock()
	seen := strings.Join(rootDone.seen, "\n")
	rootDone.mu.Unlock()
	for _, want := range []string{"GET /deny/x 403.6", "GET /moved 301", "GET /page 200"} {
		if n := strings.Count(seen, want); n != len(allModes) {
			t.Errorf("observer saw %q %d times, want %d; saw:\n%s", want, n, len(allModes), seen)
		}
	}
	if strings.Contains(seen, "/api/new") {
		t.Errorf("the root app's observer saw a request the /api app served:\n%s", seen)
	}

	f, err := os.Open(filepath.Join(e.dir, "access.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	subs := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var j struct {
			Path      string `json:"uri_stem"`
			Status    int    `json:"status"`
			Substatus int    `json:"substatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		if j.Path == "/deny/x" && j.Status == 403 {
			subs[j.Path] = j.Substatus
		}
	}
	if subs["/deny/x"] != 6 {
		t.Errorf("access log substatus of /deny/x = %d, want 6", subs["/deny/x"])
	}
}

// outHeader is an outbound stage that adds a response header.
type outHeader [2]string

func (h outHeader) Respond(_ *pipeline.Request, _ int, hdr pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	hdr.Set(h[0], h[1])
	return nil
}
