package rewrite_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// TestStage checks the pipeline adapter: what the rules see of a
// pipeline.Request, and what each outcome does to it.
func TestStage(t *testing.T) {
	t.Parallel()
	set := rules(
		rule("client", ``, `<match url="^who$" /><action type="CustomResponse" statusCode="200" statusReason="{REMOTE_ADDR}:{REMOTE_PORT} {SERVER_PORT} {HTTPS}" />`),
		rule("rw", `stopProcessing="true"`, `<match url="^old/(.*)" /><serverVariables><set name="HTTP_X_FROM" value="old" /></serverVariables><action type="Rewrite" url="new/{R:1}" />`),
		rule("go", ``, `<match url="^go$" /><action type="Redirect" url="https://{HTTP_HOST}/" redirectType="Found" />`),
		rule("deny", ``, `<match url="^deny$" /><action type="CustomResponse" statusCode="403" subStatusCode="2" statusDescription="&lt;b&gt;no&lt;/b&gt;" />`),
		rule("quiet", ``, `<match url="^quiet$" /><action type="CustomResponse" statusCode="204" />`),
		rule("drop", ``, `<match url="^drop$" /><action type="AbortRequest" />`),
		rule("evil", ``, `<match url="^(a+)+$" /><action type="None" />`),
	)
	rs := compile(t, set, rewrite.Options{AppPath: "/app", MatchTimeout: 20 * time.Millisecond})
	st := rewrite.NewStage(rs, nil)
	req := func(target string) *pipeline.Request {
		p, q, _ := strings.Cut(target, "?")
		return &pipeline.Request{Method: "GET", Path: p, RawQuery: q, Host: "example.com", Scheme: "https", Proto: "HTTP/2.0",
			RemoteAddr: "10.0.0.9:4000", ClientIP: netip.MustParseAddr("203.0.113.5"), LocalAddr: "10.0.0.1:443",
			Header: pipeline.HTTPHeader(http.Header{}), AppPath: "/app"}
	}

	// A trusted proxy's client is REMOTE_ADDR.
	if res := st.Serve(req("/app/who")); res == nil || res.Status != 200 || !strings.HasPrefix(res.Reason, `rule "client": 203.0.113.5:4000 443 on`) || res.Body == nil {
		t.Errorf("who = %+v", res)
	}
	r := req("/app/old/a%20b?x=1")
	if res := st.Serve(r); res != nil {
		t.Fatalf("rewrite ended the request: %+v", res)
	}
	if r.Header.Get("X-From") != "old" {
		t.Errorf("X-From = %q, want the header the rule's <serverVariables> set", r.Header.Get("X-From"))
	}
	if !r.Rewritten() || r.Path != "/app/new/a%20b" || r.RawQuery != "x=1" || r.Header.Get("X-Original-URL") != "/app/old/a%20b?x=1" {
		t.Errorf("rewritten request: %s?%s rewritten=%v X-Original-URL %q", r.Path, r.RawQuery, r.Rewritten(), r.Header.Get("X-Original-URL"))
	}
	for _, tt := range []struct {
		target, code, location, body string
		abort                        bool
	}{
		{"/app/go?q", "302", "https://example.com/?q", "", false},
		{"/app/deny", "403.2", "", "<b>no</b>", false},
		{"/app/quiet", "204", "", "", false},
		{"/app/drop", "0", "", "", true},
		{"/app/" + strings.Repeat("a", 40) + "!", "500.52", "", "", false},
	} {
		res := st.Serve(req(tt.target))
		if res == nil {
			t.Errorf("%s: passed", tt.target)
			continue
		}
		if res.Code() != tt.code || res.Location != tt.location || string(res.Body) != tt.body || res.Abort != tt.abort || res.Stage != "rewrite" {
			t.Errorf("%s: %+v, want %s %q %q abort=%v", tt.target, res, tt.code, tt.location, tt.body, tt.abort)
		}
	}
	// A rewritten path a client could not send is refused as the client's
	// would be, and the request is left as it was.
	r = req("/app/old/..%252Fx")
	if res := st.Serve(r); res == nil || res.Status != http.StatusBadRequest || r.Rewritten() {
		t.Errorf("rewrite to /app/new/..%%2Fx: %+v, rewritten %v (%s)", res, r.Rewritten(), r.Path)
	}
	if res := st.Serve(req("/other/old/x")); res != nil {
		t.Errorf("a path outside the app: %+v", res)
	}
	if rewrite.NewStage(nil, nil) != nil {
		t.Error("a stage with nothing to do must be nil")
	}
}
