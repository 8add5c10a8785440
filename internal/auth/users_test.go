package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestLoadUsersRejectsWeakHashes(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"bob:$apr1$abcdefgh$0123456789012345678901", `:2: user "bob": MD5 hashes are refused; only bcrypt is accepted`},
		{"bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", `:2: user "bob": SHA-1 hashes are refused`},
		{"bob:abQ9KY.KfrYrc", `:2: user "bob": DES crypt hashes are refused`},
		{"bob:secret", `:2: user "bob": plain-text or unknown hashes are refused`},
		{"bob:$2y$05$short", `:2: user "bob": not a valid bcrypt hash`},
		{"nocolon", `:2: want user:hash`},
	}
	for _, tt := range tests {
		p := writeFile(t, "users", "# users\n"+tt.line+"\n")
		_, err := loadUsers(p)
		if err == nil || !strings.Contains(err.Error(), p+tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.line, err, tt.want)
		}
	}
}

func TestUsersCheck(t *testing.T) {
	t.Parallel()
	// htpasswd -B writes $2y$; Go's bcrypt writes $2a$: both are read.
	y := "$2y$" + strings.TrimPrefix(bcryptHash(t, "pw-b"), "$2a$")
	p := writeFile(t, "users", "alice:"+bcryptHash(t, "pw-a")+"\n\nbob:"+y+"\n")
	u, err := loadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, pw string
		want     bool
	}{{"alice", "pw-a", true}, {"alice", "pw-b", false}, {"bob", "pw-b", true}, {"Alice", "pw-a", false}, {"carol", "pw-a", false}, {"alice", "", false}} {
		if got := u.check(tt.user, tt.pw); got != tt.want {
			t.Errorf("check(%q, %q) = %v", tt.user, tt.pw, got)
		}
	}
}

func TestLoadGroups(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "groups", "# g\nstaff: alice bob@EXAMPLE.COM\nadmins:alice\n")
	g, err := loadGroups(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g["alice"], ","); got != "staff,admins" {
		t.Errorf("alice's groups = %q", got)
	}
	if got := strings.Join(g["bob@example.com"], ","); got != "staff" {
		t.Errorf("bob's groups = %q", got)
	}
	if _, err := loadGroups(writeFile(t, "g", "a,b: alice\n")); err == nil || !strings.Contains(err.Error(), ":1: group \"a,b\"") {
		t.Errorf("comma group: err = %v", err)
	}
}

// TestKeytabPath checks the MIT Kerberos search order. Not parallel: it
// sets KRB5_KTNAME.
func TestKeytabPath(t *testing.T) {
	t.Setenv("KRB5_KTNAME", "FILE:/srv/kt")
	if got := KeytabPath("/etc/gh.keytab"); got != "/etc/gh.keytab" {
		t.Errorf("configured: %q", got)
	}
	if got := KeytabPath(""); got != "/srv/kt" {
		t.Errorf("KRB5_KTNAME=FILE:/srv/kt: %q", got)
	}
	t.Setenv("KRB5_KTNAME", "")
	if got := KeytabPath(""); got != DefaultKeytab {
		t.Errorf("default: %q", got)
	}
}
