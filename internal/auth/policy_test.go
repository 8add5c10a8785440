package auth

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func rule(allow bool, users, roles, verbs []string, line int) config.AuthzOp {
	return config.AuthzOp{Kind: "add", Rule: config.AuthzRule{Allow: allow, Users: users, Roles: roles, Verbs: verbs, File: "web.config", Line: line}}
}

func TestPolicyIISOrder(t *testing.T) {
	t.Parallel()
	on, off := true, false
	l := func(s ...string) []string { return s }
	secs := []config.Security{
		{Windows: &on, Authorization: &config.AuthzCollection{Ops: []config.AuthzOp{
			// Deny rules win over allow rules whatever their order: this
			// allow for mallory comes first and still loses.
			rule(true, l("mallory@EXAMPLE.COM"), nil, nil, 10),
			rule(false, l("mallory@EXAMPLE.COM"), nil, nil, 11),
		}}},
		{Path: "Admin", Line: 20, Anonymous: &off, Authorization: &config.AuthzCollection{Ops: []config.AuthzOp{
			{Kind: "remove", Rule: config.AuthzRule{Users: l("*")}},
			rule(true, nil, l("Admins"), nil, 21),
			rule(true, l(`EXAMPLE\bob`), nil, l("GET"), 22),
			// A child cannot allow what the parent denies.
			rule(true, l("mallory@EXAMPLE.COM"), nil, nil, 23),
		}}},
		{Path: "admin/open", Line: 30, Authorization: &config.AuthzCollection{Ops: []config.AuthzOp{
			{Kind: "clear"},
			rule(true, l("*"), nil, nil, 31),
			rule(false, l("?"), nil, l("POST"), 32),
		}}},
	}
	pol := NewPolicy(config.DefaultSchemes, secs)
	alice := &pipeline.Identity{Name: "alice@EXAMPLE.COM", Groups: []string{"admins"}}
	bob := &pipeline.Identity{Name: "bob@EXAMPLE.COM"}
	mallory := &pipeline.Identity{Name: "mallory@EXAMPLE.COM", Groups: []string{"Admins"}}
	tests := []struct {
		path, method string
		id           *pipeline.Identity
		want         bool
	}{
		{"/", "GET", nil, true},
		{"/x", "GET", bob, true},
		{"/x", "GET", mallory, false},
		{"/admin", "GET", nil, false},
		{"/ADMIN/page", "GET", alice, true},
		{"/admin//page", "GET", bob, true},
		{"/admin/page", "POST", bob, false},
		{"/admin/page", "GET", mallory, false},
		{"/administrator", "GET", nil, true}, // segment-wise: not under admin
		{"/admin/open/x", "GET", nil, true},
		{"/admin/open/x", "POST", nil, false},
		{"/admin/open/x", "POST", bob, true},
		{"/admin/%4Fpen/x", "POST", nil, false}, // escaped letters are the same path
	}
	for _, tt := range tests {
		sc := pol.For(tt.path)
		got, why := sc.Authorize(tt.id, tt.method)
		if got != tt.want {
			t.Errorf("%s %s as %v: allowed = %v (%s), want %v", tt.method, tt.path, who(tt.id), got, why, tt.want)
		}
	}
	if sc := pol.For("/admin/x"); sc.Schemes.Anonymous || !sc.Schemes.Windows {
		t.Errorf("admin schemes = %+v, want windows on (inherited) and anonymous off", sc.Schemes)
	}
	if pol.Trivial() {
		t.Error("Trivial = true")
	}
	if !NewPolicy(config.DefaultSchemes, nil).Trivial() {
		t.Error("default policy is not Trivial")
	}
}

func TestNameMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, entry string
		want        bool
	}{
		{"alice@EXAMPLE.COM", "alice@example.com", true},
		{"alice@EXAMPLE.COM", `EXAMPLE\alice`, true},
		{"alice@EXAMPLE.COM", `example.com\ALICE`, true},
		{"alice@EXAMPLE.COM", "alice", false},
		{"alice@EXAMPLE.COM", `OTHER\alice`, false},
		{"alice", "Alice", true},
		{"alice", `EXAMPLE\alice`, false},
	}
	for _, tt := range tests {
		if got := nameMatches(tt.name, tt.entry); got != tt.want {
			t.Errorf("nameMatches(%q, %q) = %v", tt.name, tt.entry, got)
		}
	}
}
