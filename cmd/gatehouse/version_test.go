package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		bi      debug.BuildInfo
		stamped string
		want    string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "", "v1.2.3 (go1.26.8)"},
		{"checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-27T08:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, "", "(devel) (revision 0123456789ab+dirty, 2026-11-27T08:00:00Z, go1.26.8)"},
		{"bare", debug.BuildInfo{}, "", "(devel)"},
		{"stamped, no VCS info", debug.BuildInfo{GoVersion: "go1.26.8"}, "0123456789ab", "(devel) (revision 0123456789ab, go1.26.8)"},
		{"VCS info wins", debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdefabcdefabcd"}}}, "0123", "(devel) (revision abcdefabcdef)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(&tc.bi, tc.stamped); got != tc.want {
				t.Errorf("versionOf = %q, want %q", got, tc.want)
			}
		})
	}
}
