package frontend_test

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

const twoAppsConfig = `
shutdownTimeout: 2s
protocols: {h2c: true, http3: true}
sites:
  - name: s
    bindings:
      - {name: http, scheme: http, address: 127.0.0.1, port: 0}
      - {name: https, scheme: https, address: 127.0.0.1, port: 0, certificateFile: $CERT, keyFile: $KEY}
    applications: [{path: /, dir: root}, {path: /api, dir: api}]
`

// endCount counts how often it was told each request ended (a
// pipeline.EndObserver), by the request's path at its end.
type endCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *endCount) RequestEnded(r *pipeline.Request) {
	c.mu.Lock()
	c.n[r.Path]++
	c.mu.Unlock()
}

func (c *endCount) of(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// oldToAPI rewrites /old/… into the /api application.
var oldToAPI = pipeline.StageFunc(func(r *pipeline.Request) *pipeline.Result {
	if rest, ok := strings.CutPrefix(r.Path, "/old/"); ok {
		if res := r.Rewrite("/api/"+rest, r.RawQuery); res != nil {
			return res
		}
	}
	return nil
})

// TestEndObserversOfARewrittenRequest: a request whose stages ran in one
// application and that URL Rewrite sent on to another is told ended, once,
// to the end observers of both (Dynamic IP Restrictions counted it in
// with the first one's stages), on every protocol; also when the second
// application's stages refuse it.
func TestEndObserversOfARewrittenRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root", "api")
	o := newOpener()
	rootEnds, apiEnds := &endCount{n: map[string]int{}}, &endCount{n: map[string]int{}}
	o.chains = map[string]*pipeline.Chain{
		"s/": {In: []pipeline.Stage{oldToAPI}, EndObservers: []pipeline.EndObserver{rootEnds}},
		"s/api": {In: []pipeline.Stage{pipeline.StageFunc(func(r *pipeline.Request) *pipeline.Result {
			if strings.HasPrefix(r.Path, "/api/deny/") {
				return pipeline.Refuse("test", http.StatusForbidden, 0, "denied by the test stage")
			}
			return nil
		})}, EndObservers: []pipeline.EndObserver{apiEnds}},
	}
	s := start(t, e.config(t, twoAppsConfig), o)
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			c := client(t, m, addrOf(t, s, bindingFor(m), m), e.pki, false)
			res, body := get(t, c, m.url("localhost", "/old/"+string(m)))
			if res.StatusCode != 200 || decode(t, body).App != "/api" {
				t.Fatalf("/old/%s: %d %q, want 200 from /api", m, res.StatusCode, body)
			}
			path := "/api/" + string(m)
			if n := rootEnds.of(path); n != 1 {
				t.Errorf("the root application, whose stages ran, was told %d times that %s ended, want once", n, path)
			}
			if n := apiEnds.of(path); n != 1 {
				t.Errorf("the /api application was told %d times that %s ended, want once", n, path)
			}
			res, _ = get(t, c, m.url("localhost", "/old/deny/"+string(m)))
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("/old/deny/%s: %d, want the /api stage's 403", m, res.StatusCode)
			}
			if n := rootEnds.of("/api/deny/" + string(m)); n != 1 {
				t.Errorf("the root application was told %d times that /api/deny/%s ended, want once", n, m)
			}
		})
	}
}

// TestDynamicIPCountsOutARewrittenRequest: Dynamic IP Restrictions'
// maxConcurrentRequests of an application counts a request URL Rewrite
// sent on to another application out once it is answered, so a client
// whose requests were rewritten is not refused with 403.501 afterwards
// with no request in progress. (The request descriptions are pooled; the
// garbage collections empty the pools, so the next request is described
// by a new one, as it is on a busy server.)
func TestDynamicIPCountsOutARewrittenRequest(t *testing.T) {
	t.Parallel()
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "root", "api")
			o := newOpener()
			dyn := iis.NewDynamicIPSecurity(&config.DynamicIPSecurity{MaxConcurrentRequests: 2}, nil)
			o.chains = map[string]*pipeline.Chain{"s/": {
				In:           []pipeline.Stage{dyn, oldToAPI},
				EndObservers: []pipeline.EndObserver{dyn},
				Observers:    []pipeline.Observer{dyn},
			}}
			s := start(t, e.config(t, twoAppsConfig), o)
			addr := addrOf(t, s, bindingFor(m), m)
			for i := range 3 {
				c := client(t, m, addr, e.pki, false)
				res, body := get(t, c, m.url("localhost", "/old/x"))
				if res.StatusCode != 200 || decode(t, body).App != "/api" {
					t.Fatalf("/old/x, rewritten request %d: %d %q, want 200 from /api", i+1, res.StatusCode, body)
				}
				c.CloseIdleConnections()
				runtime.GC()
				runtime.GC()
			}
			res, body := get(t, client(t, m, addr, e.pki, false), m.url("localhost", "/page"))
			if res.StatusCode != 200 {
				t.Fatalf("/page after three rewritten requests, none in progress: %d %q, want 200", res.StatusCode, body)
			}
		})
	}
}
