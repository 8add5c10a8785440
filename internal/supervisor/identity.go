package supervisor

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// Identity is the account an app's processes run as (IIS: the application
// pool identity). The zero Identity is uid 0; use nil in Spec for "Gatehouse's
// own user".
type Identity struct {
	// User is the account name, for messages and USER/LOGNAME; it may be a
	// bare uid.
	User string
	// UID and GID are the real and effective user and group ids.
	UID, GID uint32
	// Groups are the supplementary groups; nil or empty means none.
	Groups []uint32
	// Home is the account's home folder, for HOME ("" if unknown).
	Home string
	// AllowRoot must be set for UID 0; a Spec asking for root without it
	// fails to start.
	AllowRoot bool
}

// ErrRootIdentity is returned for an Identity with UID 0 and no AllowRoot.
var ErrRootIdentity = errors.New("refusing to run the app as root without allowRoot")

// ResolveIdentity looks up name (an account name or a numeric uid), group (a
// group name or gid; "" = the account's primary group) and groups (the
// supplementary groups; nil = the account's groups from the group database,
// as initgroups does; empty = none). A bare uid without a passwd entry needs
// group. Root (uid 0) needs allowRoot.
func ResolveIdentity(name, group string, groups []string, allowRoot bool) (*Identity, error) {
	id := &Identity{User: name, AllowRoot: allowRoot}
	var u *user.User
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		id.UID = uint32(n)
		u, _ = user.LookupId(name) // a bare uid need not have an entry
	} else {
		if u, err = user.Lookup(name); err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		n, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
		}
		id.UID = uint32(n)
	}
	if id.UID == 0 && !allowRoot {
		return nil, fmt.Errorf("user %q: %w", name, ErrRootIdentity)
	}
	if u != nil {
		id.Home = u.HomeDir
	}
	switch {
	case group != "":
		gid, err := lookupGID(group)
		if err != nil {
			return nil, err
		}
		id.GID = gid
	case u != nil:
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
		}
		id.GID = uint32(gid)
	default:
		return nil, fmt.Errorf("user %q has no account entry; set group", name)
	}
	if groups == nil && u != nil {
		ids, err := u.GroupIds()
		if err != nil {
			return nil, fmt.Errorf("groups of user %q: %w", name, err)
		}
		groups = ids
	}
	for _, g := range groups {
		gid, err := lookupGID(g)
		if err != nil {
			return nil, err
		}
		if gid != id.GID {
			id.Groups = append(id.Groups, gid)
		}
	}
	return id, nil
}

func lookupGID(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", name, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group %q: gid %q: %w", name, g.Gid, err)
	}
	return uint32(n), nil
}

// String names the identity for logs: "www1 (uid 1001, gid 1001)".
func (id *Identity) String() string {
	if id == nil {
		return "gatehouse's own user"
	}
	return fmt.Sprintf("%s (uid %d, gid %d)", id.User, id.UID, id.GID)
}
