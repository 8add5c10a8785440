package directory

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestSIDRoundTrip(t *testing.T) {
	for _, s := range []string{"S-1-1-0", "S-1-5-32-545", "S-1-5-21-3002764801-2766524300-3047668357-1105", "S-1-18-1"} {
		b, err := sidBytes(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got, err := sidString(b)
		if err != nil || got != s {
			t.Errorf("%s → % x → %q, %v", s, b, got, err)
		}
	}
	// S-1-5-32-545 as AD stores it.
	b, _ := sidBytes("S-1-5-32-545")
	if want := "\x01\x02\x00\x00\x00\x00\x00\x05\x20\x00\x00\x00\x21\x02\x00\x00"; string(b) != want {
		t.Errorf("S-1-5-32-545 = % x, want % x", b, want)
	}
	for _, bad := range []string{"", "S-1", "X-1-5", "S-2-5-1", "S-1-5-x", "S-1-5-4294967296", "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16"} {
		if _, err := sidBytes(bad); err == nil {
			t.Errorf("sidBytes(%q) accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, {1, 1, 0, 0, 0, 0, 0, 5}, {2, 0, 0, 0, 0, 0, 0, 1}} {
		if _, err := sidString(bad); err == nil {
			t.Errorf("sidString(% x) accepted", bad)
		}
	}
	if f := sidFilter([][]byte{{1, 0, 0, 0, 0, 0, 0, 1}}); f != `(|(objectSid=\01\00\00\00\00\00\00\01))` {
		t.Errorf("filter %s", f)
	}
}

func TestWellKnown(t *testing.T) {
	for sid, want := range map[string]string{"S-1-5-11": `NT AUTHORITY\Authenticated Users`, "s-1-1-0": "Everyone", "S-1-5-32-545": `BUILTIN\Users`, "S-1-18-1": "Authentication authority asserted identity"} {
		if got, ok := WellKnownName(sid); !ok || got != want {
			t.Errorf("WellKnownName(%s) = %q, %v", sid, got, ok)
		}
	}
	if _, ok := WellKnownName("S-1-5-21-1-2-3-513"); ok {
		t.Error("a domain SID is well known")
	}
	if got := strings.Join(TokenSIDs(), ","); got != "S-1-1-0,S-1-5-2,S-1-5-11,S-1-5-15,S-1-5-32-545" {
		t.Errorf("TokenSIDs = %s", got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "neither url nor domain"},
		{Config{URLs: []string{"http://dc"}}, "want ldaps://host"},
		{Config{URLs: []string{"ldaps://"}}, "want ldaps://host"},
		{Config{URLs: []string{"ldaps://dc/dc=x"}}, "no path"},
		{Config{URLs: []string{"ldaps://dc"}, CAFile: filepath.Join(dir, "missing")}, "caFile"},
		{Config{URLs: []string{"ldaps://dc"}, CAFile: pw}, "no PEM certificate"},
		{Config{URLs: []string{"ldaps://dc"}, BindUser: "u"}, "go together"},
		{Config{URLs: []string{"ldaps://dc"}, BindUser: "u", BindPasswordFile: filepath.Join(dir, "missing")}, "bindPasswordFile"},
		{Config{URLs: []string{"ldaps://dc"}, BindUser: "u", BindPasswordFile: empty}, "is empty"},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	d, err := New(Config{URLs: []string{"ldap://dc:3268", "ldaps://dc2"}, BindUser: "u", BindPasswordFile: pw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.password(); p != "secret" || err != nil {
		t.Errorf("password = %q, %v", p, err)
	}
}

// TestDownDirectoryIsLeftAlone: a directory that drops every connection
// fails the lookup with ErrUnavailable, and the next logins are answered
// from the cache at once without connecting again until retryAfter has
// passed; a well-behaved cache entry is still served.
func TestDownDirectoryIsLeftAlone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	d, err := New(Config{URLs: []string{"ldap://" + l.Addr().String()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d.now = func() time.Time { return now }
	d.cache["S-1-5-21-1-2-3-1104"] = cached{name: `D\Dev`, expires: now.Add(time.Hour)}
	names, err := d.Names(context.Background(), []string{"S-1-5-21-1-2-3-1104", "S-1-5-21-1-2-3-1105"})
	if !errors.Is(err, ErrUnavailable) || names["S-1-5-21-1-2-3-1104"] != `D\Dev` || len(names) != 1 {
		t.Fatalf("Names = %v, %v; want the cached name and ErrUnavailable", names, err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	if h := d.Health(); h.Up || h.Failures != 1 || h.LastError == "" {
		t.Errorf("health after a failure: %+v", h)
	}
	if _, err := d.Names(context.Background(), []string{"S-1-5-21-1-2-3-1105"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second lookup: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the down directory was asked again at once (%d connections)", n)
	}
	now = now.Add(retryAfter + time.Second)
	if _, err := d.Names(context.Background(), []string{"S-1-5-21-1-2-3-1105"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lookup after retryAfter: %v", err)
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections after retryAfter, want 2", n)
	}
	l.Close()
	<-done
}

// TestUnreachableTimesOut: a directory that accepts but never answers is
// bounded by the timeout.
func TestUnreachableTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := New(Config{URLs: []string{"ldaps://" + l.Addr().String()}, Timeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Names(context.Background(), []string{"S-1-5-21-1-2-3-1105"})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Names against a silent server = %v, want a timeout", err)
	}
}

func TestQualify(t *testing.T) {
	c := &conn{netbios: map[string]string{"dc=gatehouse,dc=test": "GATEHOUSE", "dc=child,dc=gatehouse,dc=test": "CHILD"}}
	for _, tc := range []struct{ sid, dn, want string }{
		{"S-1-5-21-1-2-3-1104", "CN=Developers,CN=Users,DC=gatehouse,DC=test", `GATEHOUSE\Developers`},
		{"S-1-5-21-4-5-6-1104", "CN=Ops,OU=x,DC=child,DC=gatehouse,DC=test", `CHILD\Ops`},
		{"S-1-5-32-545", "CN=Users,CN=Builtin,DC=gatehouse,DC=test", `BUILTIN\Users`},
		{"S-1-5-21-7-8-9-1", "CN=x,DC=elsewhere", "x"},
	} {
		if got := c.qualify(tc.sid, tc.dn, tc.dn[3:strings.IndexByte(tc.dn, ',')]); got != tc.want {
			t.Errorf("qualify(%s) = %q, want %q", tc.dn, got, tc.want)
		}
	}
}

// BenchmarkNamesWarm is the directory's share of a login whose groups are
// all in the cache: ten SIDs named without asking the directory.
func BenchmarkNamesWarm(b *testing.B) {
	d, err := New(Config{URLs: []string{"ldaps://dc.invalid"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var sids []string
	for i := range 10 {
		sid := "S-1-5-21-3002764801-2766524300-3047668357-" + strconv.Itoa(1100+i)
		sids = append(sids, sid)
		d.cache[sid] = cached{name: `GATEHOUSE\g` + strconv.Itoa(i), expires: time.Now().Add(time.Hour)}
	}
	b.ReportAllocs()
	for b.Loop() {
		names, err := d.Names(context.Background(), sids)
		if err != nil || len(names) != len(sids) {
			b.Fatal(names, err)
		}
	}
}

// refusingServer is an LDAP server that refuses StartTLS (protocolError)
// and records the operations it gets (the application tag of each
// request), answering the others with operationsError.
func refusingServer(t *testing.T) (addr string, ops func() []int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int64
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			func() {
				defer c.Close()
				for {
					p, err := ber.ReadPacket(c)
					if err != nil || len(p.Children) < 2 {
						return
					}
					id, op := p.Children[0].Value, p.Children[1]
					mu.Lock()
					seen = append(seen, int64(op.Tag))
					mu.Unlock()
					respTag := map[ber.Tag]ber.Tag{ldap.ApplicationExtendedRequest: ldap.ApplicationExtendedResponse,
						ldap.ApplicationBindRequest: ldap.ApplicationBindResponse}[op.Tag]
					if respTag == 0 {
						return // unbind, or anything else: hang up
					}
					resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
					resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
					r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, respTag, nil, "")
					r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ldap.LDAPResultProtocolError), ""))
					r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
					r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "refused", ""))
					resp.AppendChild(r)
					if _, err := c.Write(resp.Bytes()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// TestCleartextBindRefused: a server that refuses StartTLS never gets the
// simple bind (the password) unless allowCleartextBind is set.
func TestCleartextBindRefused(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		addr, ops := refusingServer(t)
		d, err := New(Config{URLs: []string{"ldap://" + addr}, BindUser: `D\svc`, BindPasswordFile: pw, AllowCleartextBind: allow}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Check(context.Background())
		bound := slices.Contains(ops(), int64(ldap.ApplicationBindRequest))
		switch {
		case err == nil:
			t.Fatalf("allowCleartextBind=%v: Check succeeded against a refusing server", allow)
		case !allow && (bound || !strings.Contains(err.Error(), "StartTLS")):
			t.Errorf("StartTLS refused: err %v, bind sent %v; want a StartTLS error and no bind", err, bound)
		case allow && !bound:
			t.Errorf("allowCleartextBind: no bind sent (%v)", err)
		}
	}
}

func TestDNSDomain(t *testing.T) {
	for dn, want := range map[string]string{"DC=gatehouse,DC=test": "gatehouse.test", "dc=Corp, dc=Example,DC=com": "Corp.Example.com", "CN=x": ""} {
		if got := dnsDomain(dn); got != want {
			t.Errorf("dnsDomain(%q) = %q, want %q", dn, got, want)
		}
	}
}

// TestAccountOtherRealm: once the directory's domain is known, a principal
// of another realm (an MIT KDC's) is no account there, without a lookup;
// a service principal never is.
func TestAccountOtherRealm(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := New(Config{URLs: []string{"ldap://" + l.Addr().String()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.domain = "gatehouse.test"
	for _, p := range []string{"bob@GH.TEST", "HTTP/web@GATEHOUSE.TEST", "nobody"} {
		if _, err := d.Account(context.Background(), p); !errors.Is(err, ErrNoAccount) {
			t.Errorf("Account(%s) = %v, want ErrNoAccount", p, err)
		}
	}
	if h := d.Health(); h.Lookups != 0 {
		t.Errorf("%d lookups, want none", h.Lookups)
	}
}
