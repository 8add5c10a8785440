package integration

import (
	"net/http"
	"testing"
)

func TestApplyForwarded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		remote      string
		xff, xfp    []string
		wantRemote  string
		wantScheme  string
		wantXFF     []string // header after processing; nil means absent
		wantXFP     []string
		wantOrigFor string
		wantOrigPro string
	}{
		{
			name: "v4 with port from loopback", remote: "127.0.0.1:50000",
			xff: []string{"203.0.113.7:4711"}, xfp: []string{"https"},
			wantRemote: "203.0.113.7:4711", wantScheme: "https",
			wantOrigFor: "127.0.0.1:50000", wantOrigPro: "http",
		},
		{
			name: "v6 bracketed with port", remote: "[::1]:50000",
			xff: []string{"[2001:db8::5]:5017"}, xfp: []string{"http"},
			wantRemote: "[2001:db8::5]:5017", wantScheme: "http",
			wantOrigFor: "[::1]:50000", wantOrigPro: "http",
		},
		{
			name: "bare v4 and v6 get port 0", remote: "127.0.0.2:1",
			xff: []string{"2001:db8::9"}, wantRemote: "[2001:db8::9]:0",
			wantOrigFor: "127.0.0.2:1",
		},
		{
			name: "bracketed v6 without port", remote: "127.0.0.1:1",
			xff: []string{"[2001:db8::9]"}, wantRemote: "[2001:db8::9]:0",
			wantOrigFor: "127.0.0.1:1",
		},
		{
			name: "only right-most entry, rest kept", remote: "127.0.0.1:1",
			xff: []string{"198.51.100.1:1, 198.51.100.2:2", "203.0.113.3:3"}, xfp: []string{"http, https"},
			wantRemote: "203.0.113.3:3", wantScheme: "https",
			wantXFF: []string{"198.51.100.1:1, 198.51.100.2:2"}, wantXFP: []string{"http"},
			wantOrigFor: "127.0.0.1:1", wantOrigPro: "http",
		},
		{
			name: "ipv4-mapped loopback peer", remote: "[::ffff:127.0.0.1]:9",
			xff: []string{"203.0.113.7:1"}, wantRemote: "203.0.113.7:1", wantOrigFor: "[::ffff:127.0.0.1]:9",
		},
		{
			name: "non-loopback peer ignored", remote: "192.0.2.10:50000",
			xff: []string{"203.0.113.7:4711"}, xfp: []string{"https"},
			wantXFF: []string{"203.0.113.7:4711"}, wantXFP: []string{"https"},
		},
		{
			name: "unparsable for stops everything", remote: "127.0.0.1:1",
			xff: []string{"unknown"}, xfp: []string{"https"},
			wantXFF: []string{"unknown"}, wantXFP: []string{"https"},
		},
		{
			name: "proto alone", remote: "127.0.0.1:1",
			xfp: []string{"HTTPS"}, wantScheme: "https", wantOrigPro: "http",
		},
		{
			name: "invalid proto ignored, for applied", remote: "127.0.0.1:1",
			xff: []string{"203.0.113.7:1"}, xfp: []string{"ht tp"},
			wantRemote: "203.0.113.7:1", wantXFP: []string{"ht tp"}, wantOrigFor: "127.0.0.1:1",
		},
		{name: "no headers", remote: "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add(HeaderForwardedFor, v)
			}
			for _, v := range tt.xfp {
				h.Add(HeaderForwardedProto, v)
			}
			got := applyForwarded(h, tt.remote, "http")
			if got.remoteAddr != tt.wantRemote || got.scheme != tt.wantScheme {
				t.Errorf("applyForwarded = %+v, want remote %q scheme %q", got, tt.wantRemote, tt.wantScheme)
			}
			checkHeader(t, h, HeaderForwardedFor, tt.wantXFF)
			checkHeader(t, h, HeaderForwardedProto, tt.wantXFP)
			if g := h.Get(HeaderOriginalFor); g != tt.wantOrigFor {
				t.Errorf("X-Original-For = %q, want %q", g, tt.wantOrigFor)
			}
			if g := h.Get(HeaderOriginalProto); g != tt.wantOrigPro {
				t.Errorf("X-Original-Proto = %q, want %q", g, tt.wantOrigPro)
			}
		})
	}
}

func checkHeader(t *testing.T, h http.Header, name string, want []string) {
	t.Helper()
	got := h.Values(name)
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", name, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestStripBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, base, want string
		ok                     bool
	}{
		{"exact", "/app", "/app", "/", true},
		{"sub", "/app/x/y", "/app", "/x/y", true},
		{"case", "/APP/x", "/app", "/x", true},
		{"prefix not segment", "/apple", "/app", "/apple", false},
		{"other", "/x", "/app", "/x", false},
		{"short", "/a", "/app", "/a", false},
		{"nested base", "/a/b/c", "/a/b", "/c", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := stripBase(tt.path, tt.base)
			if got != tt.want || ok != tt.ok {
				t.Errorf("stripBase(%q, %q) = %q, %v; want %q, %v", tt.path, tt.base, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCleanBase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "/": "", "/app": "/app", "/app/": "/app", "app": "/app"} {
		if got := cleanBase(in); got != want {
			t.Errorf("cleanBase(%q) = %q, want %q", in, got, want)
		}
	}
}
