package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// commit is the revision the build was made from, stamped by the Makefile
// (-ldflags "-X main.commit=…") for builds without VCS information in the
// build info (-buildvcs=false, a tarball, a container build without .git).
var commit string

// version describes this build from debug.ReadBuildInfo: the module
// version ("(devel)" for a build from a checkout), the VCS revision (or
// the stamped commit) and time, and "+dirty" when the tree had changes.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return versionOf(bi, commit)
}

// versionOf formats bi, with stamped as the revision when bi has none;
// split from version so tests can feed it.
func versionOf(bi *debug.BuildInfo, stamped string) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var extra []string
	if settings["vcs.revision"] == "" && stamped != "" {
		extra = append(extra, "revision "+stamped)
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if settings["vcs.modified"] == "true" {
			rev += "+dirty"
		}
		extra = append(extra, "revision "+rev)
	}
	if t := settings["vcs.time"]; t != "" {
		extra = append(extra, t)
	}
	if bi.GoVersion != "" {
		extra = append(extra, bi.GoVersion)
	}
	if len(extra) == 0 {
		return v
	}
	return v + " (" + strings.Join(extra, ", ") + ")"
}

func cmdVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "gatehouse %s\n", version())
	return nil
}
