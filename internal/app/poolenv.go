package app

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// DefaultPath is PATH in a clean environment that has none to keep.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cleanKeep are the variables a clean environment keeps from Gatehouse's.
var cleanKeep = []string{"PATH", "LANG", "TZ"}

// poolEnv returns the base environment of an app process: base itself, or
// with clean only PATH (DefaultPath if base has none), LANG and TZ from it.
// With an identity, HOME, USER and LOGNAME name that account (HOME only if
// it has one), as a login would, instead of Gatehouse's.
func poolEnv(base []string, clean bool, id *supervisor.Identity) []string {
	var out []string
	if clean {
		hasPath := false
		for _, kv := range base {
			name, _, _ := strings.Cut(kv, "=")
			for _, k := range cleanKeep {
				if name == k {
					out = append(out, kv)
					hasPath = hasPath || k == "PATH"
				}
			}
		}
		if !hasPath {
			out = append(out, "PATH="+DefaultPath)
		}
		for _, k := range []string{"HOME", "USER", "LOGNAME"} {
			if id == nil {
				if v, ok := lookup(base, k); ok {
					out = append(out, k+"="+v)
				}
			}
		}
	} else {
		out = append(out, base...)
	}
	if id == nil {
		return out
	}
	set := map[string]string{"USER": id.User, "LOGNAME": id.User}
	if id.Home != "" {
		set["HOME"] = id.Home
	}
	kept := out[:0]
	for _, kv := range out {
		name, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[name]; !replaced && name != "HOME" {
			kept = append(kept, kv)
		}
	}
	for _, k := range []string{"HOME", "USER", "LOGNAME"} {
		if v, ok := set[k]; ok {
			kept = append(kept, k+"="+v)
		}
	}
	return kept
}

func lookup(env []string, key string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}
