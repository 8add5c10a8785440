package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxAuthFile bounds the user and group files read.
const maxAuthFile = 16 << 20

// users is one load of the htpasswd file.
type users struct {
	hash map[string][]byte // user name → bcrypt hash
	// dummy is compared against when the user does not exist, so an
	// unknown user costs as much time as a wrong password. Its cost is
	// the file's highest.
	dummy []byte
}

// loadUsers reads an htpasswd file. Only bcrypt hashes ($2a$, $2b$, $2y$,
// as `htpasswd -B` writes them) are accepted; a line with any other hash
// (MD5 "$apr1$", SHA-1 "{SHA}", crypt, SHA-512 crypt, plain text) makes
// the whole file an error naming the file, line and user, since such
// hashes can be cracked quickly if the file leaks.
func loadUsers(path string) (*users, error) {
	u := &users{hash: map[string][]byte{}}
	maxCost := bcrypt.MinCost
	err := readAuthLines(path, func(n int, line string) error {
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: want user:hash", path, n)
		}
		if kind := weakHash(hash); kind != "" {
			return fmt.Errorf("%s:%d: user %q: %s hashes are refused; only bcrypt is accepted (create the entry with htpasswd -B)", path, n, name, kind)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return fmt.Errorf("%s:%d: user %q: not a valid bcrypt hash: %v", path, n, name, err)
		}
		maxCost = max(maxCost, cost)
		if _, dup := u.hash[name]; dup {
			return fmt.Errorf("%s:%d: user %q is listed twice", path, n, name)
		}
		u.hash[name] = []byte(hash)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.dummy, err = bcrypt.GenerateFromPassword([]byte("gatehouse"), maxCost); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// weakHash names the kind of a non-bcrypt htpasswd hash, "" for bcrypt.
func weakHash(h string) string {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return ""
	case strings.HasPrefix(h, "$apr1$"), strings.HasPrefix(h, "$1$"):
		return "MD5"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1"
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "SHA-crypt"
	case len(h) == 13:
		return "DES crypt"
	}
	return "plain-text or unknown"
}

// check reports whether password is user's. It takes as long whether or
// not the user exists.
func (u *users) check(user, password string) bool {
	h, ok := u.hash[user]
	if !ok {
		h = u.dummy
	}
	err := bcrypt.CompareHashAndPassword(h, []byte(password))
	return ok && err == nil
}

// groups is one load of the group file: lower-cased user name → groups.
type groups map[string][]string

// loadGroups reads an Apache AuthGroupFile: "group: user1 user2", one
// group a line, '#' comments. Group names must not hold a comma, which
// separates them in MS-ASPNETCORE-GROUPS.
func loadGroups(path string) (groups, error) {
	g := groups{}
	err := readAuthLines(path, func(n int, line string) error {
		name, members, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: want group: user1 user2", path, n)
		}
		if strings.ContainsAny(name, ", \t") {
			return fmt.Errorf("%s:%d: group %q: a group name must not contain commas or blanks", path, n, name)
		}
		for _, m := range strings.Fields(members) {
			k := strings.ToLower(m)
			g[k] = append(g[k], name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// readAuthLines reads the user or group file at path (at most maxAuthFile
// bytes) and calls line with each line's number and trimmed text, skipping
// blank lines and '#' comments. The first error line returns ends it.
func readAuthLines(path string, line func(n int, text string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxAuthFile {
		return fmt.Errorf("%s is larger than %d bytes", path, maxAuthFile)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		if err := line(n, text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
