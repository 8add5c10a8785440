package frontend_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// TestConnStateIsPerConnection checks pipeline.Request.Conn on every
// protocol: what a stage records on a connection is seen by that
// connection's later requests and never by another connection's (the
// per-connection Kerberos login depends on it). HTTP/3 keeps none.
func TestConnStateIsPerConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "root", "api")
	o := newOpener()
	o.chains = map[string]*pipeline.Chain{
		"s/": {In: []pipeline.Stage{pipeline.StageFunc(func(r *pipeline.Request) *pipeline.Result {
			name := "none"
			switch {
			case r.Conn == nil:
				name = "no state"
			case r.Path == "/conn/set":
				r.Conn.SetIdentity(pipeline.ScopeOf(r), &pipeline.Identity{Name: r.RawQuery})
				name = r.RawQuery
			case r.Conn.Identity(pipeline.ScopeOf(r)) != nil:
				name = r.Conn.Identity(pipeline.ScopeOf(r)).Name
			}
			return &pipeline.Result{Stage: "test", Status: http.StatusOK, Body: []byte(name), ContentType: "text/plain"}
		})}},
	}
	s := start(t, e.config(t, stagesConfig), o)
	for _, m := range allModes {
		t.Run(string(m), func(t *testing.T) {
			addr := addrOf(t, s, bindingFor(m), m)
			c1 := client(t, m, addr, e.pki, false)
			if _, body := get(t, c1, m.url("localhost", "/conn/set?user-"+string(m))); m != h3 && body != "user-"+string(m) {
				t.Fatalf("set: %q", body)
			}
			_, body := get(t, c1, m.url("localhost", "/conn/get"))
			want := "user-" + string(m)
			if m == h3 {
				want = "no state"
			}
			if body != want {
				t.Errorf("the same connection's next request saw %q, want %q", body, want)
			}
			c2 := client(t, m, addr, e.pki, false)
			_, body = get(t, c2, m.url("localhost", "/conn/get"))
			if body != "none" && body != "no state" {
				t.Errorf("another connection saw %q", body)
			}
		})
	}
}
