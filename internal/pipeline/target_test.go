package pipeline_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestBadTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		bad          bool
	}{
		{"GET", "/", false},
		{"OPTIONS", "*", false},
		{"GET", "*", true},
		{"PRI", "*", true},
		{"PRI", "/", true},
		{"GET", "a", true},
		{"GET", "", true},
		{"CONNECT", "", false},
		{"get", "/x", false},
	} {
		if got := pipeline.BadTarget(tc.method, tc.path) != ""; got != tc.bad {
			t.Errorf("BadTarget(%q, %q) = %v, want %v", tc.method, tc.path, got, tc.bad)
		}
	}
}
