package main

import (
	"runtime/debug"
	"testing"
)

// gcTarget returns the collector's current target (GOGC).
func gcTarget() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// Not parallel: the collector's target is process-wide.
func TestSetGCDefault(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	for _, tc := range []struct {
		name string
		env  map[string]string
		set  bool
		want int
	}{
		{"untuned", nil, true, gcPercent},
		{"GOGC", map[string]string{"GOGC": "50"}, false, 100},
		{"GOGC off", map[string]string{"GOGC": "off"}, false, 100},
		{"GOMEMLIMIT", map[string]string{"GOMEMLIMIT": "64MiB"}, false, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			if set := setGCDefault(func(k string) string { return tc.env[k] }); set != tc.set {
				t.Errorf("setGCDefault = %v, want %v", set, tc.set)
			}
			if got := gcTarget(); got != tc.want {
				t.Errorf("GOGC after setGCDefault = %d, want %d", got, tc.want)
			}
		})
	}
}
