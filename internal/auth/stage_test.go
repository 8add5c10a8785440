package auth

import (
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func basicStage(t *testing.T, cleartext bool) *Stage {
	t.Helper()
	on, off := true, false
	users := writeFile(t, "users", "carol:"+bcryptHash(t, "s3cret")+"\n")
	groups := writeFile(t, "groups", "staff: carol\n")
	p := NewProvider(Settings{Schemes: config.DefaultSchemes, UserFile: users, GroupFile: groups, AllowCleartextBasic: cleartext}, nil)
	realm := "Intranet"
	st, err := NewStage(NewPolicy(config.DefaultSchemes, []config.Security{
		{Anonymous: &off, Basic: &on, BasicRealm: &realm},
		{Path: "pub", Anonymous: &on},
	}), p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func request(path, authz string, tlsOn bool) *pipeline.Request {
	h := http.Header{}
	if authz != "" {
		h.Set("Authorization", authz)
	}
	r := &pipeline.Request{Method: "GET", Path: path, AppPath: "/app", Host: "intra.example:8443", Header: pipeline.HTTPHeader(h)}
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	}
	return r
}

func basicCred(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestStageBasic(t *testing.T) {
	t.Parallel()
	st := basicStage(t, false)
	tests := []struct {
		name, path, authz string
		tls               bool
		wantCode          string // "" = passes
		wantUser          string
	}{
		{"right password", "/app/x", basicCred("carol", "s3cret"), true, "", "carol"},
		{"wrong password", "/app/x", basicCred("carol", "nope"), true, "401.1", ""},
		{"unknown user", "/app/x", basicCred("dave", "s3cret"), true, "401.1", ""},
		{"garbage", "/app/x", "Basic !!!", true, "401.1", ""},
		{"no credentials", "/app/x", "", true, "401.2", ""},
		{"cleartext refused", "/app/x", basicCred("carol", "s3cret"), false, "401.1", ""},
		{"anonymous location", "/APP/Pub/x", "", false, "", ""},
		{"other scheme left for the app", "/app/pub", "Bearer xyz", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tt.path, tt.authz, tt.tls)
			res := st.Serve(r)
			switch {
			case tt.wantCode == "" && res != nil:
				t.Fatalf("refused %s: %s", res.Code(), res.Reason)
			case tt.wantCode != "" && (res == nil || res.Code() != tt.wantCode):
				t.Fatalf("result = %+v, want %s", res, tt.wantCode)
			}
			if res != nil {
				var ch []string
				for _, h := range res.Header {
					ch = append(ch, h[1])
				}
				want := `Basic realm="Intranet", charset="UTF-8"`
				if !tt.tls {
					want = "" // Basic is not offered where it would be refused
				}
				if strings.Join(ch, "|") != want {
					t.Errorf("challenges = %q, want %q", ch, want)
				}
				return
			}
			got := ""
			if r.Identity != nil {
				got = r.Identity.Name
				if r.Identity.Scheme != "Basic" || strings.Join(r.Identity.Groups, ",") != "staff" {
					t.Errorf("identity = %+v", r.Identity)
				}
				if v := r.Header.Get("Authorization"); v != "" {
					t.Errorf("Authorization %q left for the app after Basic", v)
				}
			}
			if got != tt.wantUser {
				t.Errorf("user = %q, want %q", got, tt.wantUser)
			}
			if tt.authz == "Bearer xyz" && r.Header.Get("Authorization") != "Bearer xyz" {
				t.Errorf("Bearer credentials removed")
			}
		})
	}
}

func TestStageRespondChallengesAppUnauthorized(t *testing.T) {
	t.Parallel()
	on := true
	p := NewProvider(Settings{Schemes: config.DefaultSchemes, Keytab: writeFile(t, "kt", "")}, nil)
	// An empty file is not a keytab: loading it must fail with its name.
	if _, err := NewStage(NewPolicy(config.DefaultSchemes, []config.Security{{Windows: &on}}), p); err == nil || !strings.Contains(err.Error(), "keytab") {
		t.Fatalf("NewStage with a bad keytab: err = %v", err)
	}
	st := basicStage(t, true)
	for _, tc := range []struct {
		status int
		pre    string
		want   string
	}{
		{401, "", `Basic realm="Intranet", charset="UTF-8"`},
		{401, `Basic realm="app"`, `Basic realm="app"`}, // the app's own challenge stays alone
		{200, "", ""},
	} {
		h := http.Header{}
		if tc.pre != "" {
			h.Set("WWW-Authenticate", tc.pre)
		}
		st.Respond(request("/app/x", "", false), tc.status, pipeline.HTTPHeader(h))
		if got := strings.Join(h.Values("WWW-Authenticate"), "|"); got != tc.want {
			t.Errorf("status %d with %q: WWW-Authenticate = %q, want %q", tc.status, tc.pre, got, tc.want)
		}
	}
}

// TestNegotiateLoginStaysInItsScope checks that a Negotiate login kept for
// a connection holds only for the site and application it was made for:
// on the same connection, another site (with its own keytab) and another
// application of the same site see an anonymous request.
func TestNegotiateLoginStaysInItsScope(t *testing.T) {
	t.Parallel()
	ktA, pathA := keytabFile(t, "a-secret")
	_, pathB := keytabFile(t, "b-secret")
	on, off := true, false
	stage := func(keytab string) *Stage {
		p := NewProvider(Settings{Schemes: config.DefaultSchemes, Keytab: keytab}, nil)
		st, err := NewStage(NewPolicy(config.DefaultSchemes, []config.Security{{Anonymous: &off, Windows: &on}}), p)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	siteA, siteB := stage(pathA), stage(pathB)
	conn := &pipeline.Conn{}
	req := func(site, appPath, authz string) *pipeline.Request {
		r := request(appPath+"/x", authz, false)
		r.Site, r.AppPath, r.Conn = site, appPath, conn
		r.RemoteAddr, r.ClientIP = "127.0.0.1:40000", netip.MustParseAddr("127.0.0.1")
		return r
	}
	now := time.Now()
	if res := siteA.Serve(req("a", "/app", "Negotiate "+negToken(t, ktA, "alice", now, now.Add(time.Hour), false))); res != nil {
		t.Fatalf("login on site a: %s %s", res.Code(), res.Reason)
	}
	for _, tc := range []struct {
		name          string
		st            *Stage
		site, appPath string
		want          string // "" = passes as alice
	}{
		{"same app, no token", siteA, "a", "/app", ""},
		{"another site", siteB, "b", "/app", "401.2"},
		{"another app of the site", siteA, "a", "/other", "401.2"},
		{"back to the first app", siteA, "a", "/app", ""},
	} {
		r := req(tc.site, tc.appPath, "")
		res := tc.st.Serve(r)
		switch {
		case tc.want == "" && (res != nil || r.Identity == nil || r.Identity.Name != "alice@GH.TEST"):
			t.Errorf("%s: result %+v, identity %+v; want alice", tc.name, res, r.Identity)
		case tc.want != "" && (res == nil || res.Code() != tc.want):
			t.Errorf("%s: result %+v, identity %+v; want %s", tc.name, res, r.Identity, tc.want)
		}
	}
}

// keytabFile writes a keytab holding HTTP/localhost@GH.TEST's key made
// from password.
func keytabFile(t *testing.T, password string) (*keytab.Keytab, string) {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", password, time.Now(), 1, 18); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return kt, writeFile(t, "http.keytab", string(b))
}
