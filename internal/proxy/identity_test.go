package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestSetIdentity(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	setIdentity(headerSink(h), &pipeline.Identity{Name: "jürgen 100%@EXAMPLE.COM", Aliases: []string{`EXAMPLE\jürgen`}, Scheme: "Negotiate",
		Groups: []string{`BUILTIN\Administrators`, "a,b"}, GroupSIDs: []string{"S-1-5-32-544", "S-1-1-0"}, Reply: "Negotiate secret"})
	want := map[string]string{
		"MS-ASPNETCORE-USER":      "j%C3%BCrgen 100%25@EXAMPLE.COM",
		"MS-ASPNETCORE-AUTHTYPE":  "Negotiate",
		"MS-ASPNETCORE-GROUPS":    `BUILTIN\Administrators,a%2Cb`,
		"MS-ASPNETCORE-GROUPSIDS": "S-1-5-32-544,S-1-1-0",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(h) != 4 {
		t.Errorf("header = %v, want only the four identity headers (never the reply token or the aliases)", h)
	}
	h = http.Header{}
	setIdentity(headerSink(h), &pipeline.Identity{Name: "alice", Scheme: "Basic"})
	if _, ok := h["Ms-Aspnetcore-Groups"]; ok {
		t.Errorf("groups header set with no groups: %v", h)
	}
}

// TestForwardIdentity checks forwardWindowsAuthToken end to end through
// the Handler: on, the app gets the identity headers (and never a client's
// copies); off, it gets none.
func TestForwardIdentity(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q %q %q", r.Header.Values("Ms-Aspnetcore-User"), r.Header.Values("Ms-Aspnetcore-Authtype"), r.Header.Values("Ms-Aspnetcore-Groups"))
	}))
	t.Cleanup(back.Close)
	for _, tc := range []struct {
		forward bool
		id      *pipeline.Identity
		want    string
	}{
		{true, &pipeline.Identity{Name: "alice@GH.TEST", Scheme: "Negotiate", Groups: []string{"staff"}}, `["alice@GH.TEST"] ["Negotiate"] ["staff"]`},
		{true, nil, `[] [] []`},
		{false, &pipeline.Identity{Name: "alice@GH.TEST", Scheme: "Negotiate"}, `[] [] []`},
	} {
		h := &Handler{Backend: fixed(back.Listener.Addr().String()), ForwardIdentity: tc.forward}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("MS-ASPNETCORE-USER", "forged")
		req.Header.Set("ms-aspnetcore-groups", "admins")
		rec := httptest.NewRecorder()
		forwardHandler{h: h, describe: func(pr *pipeline.Request) { pr.Identity = tc.id }}.ServeHTTP(rec, req)
		h.CloseIdleConnections()
		if got := rec.Body.String(); got != tc.want {
			t.Errorf("forward=%v identity=%+v: app saw %s, want %s", tc.forward, tc.id, got, tc.want)
		}
	}
}
