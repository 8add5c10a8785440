package iis

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestScoped(t *testing.T) {
	t.Parallel()
	s := NewScoped("root", []string{"api", "api/v2", "Files"}, []string{"api", "v2", "files"})
	for _, tc := range []struct{ app, path, want string }{
		{"/", "/", "root"},
		{"/", "/api", "api"},
		{"/", "/API/orders", "api"},
		{"/", "/api/v2/x", "v2"},
		{"/", "/api/v20", "api"},
		{"/", "/apix", "root"},
		{"/", "/files/a%20b", "files"},
		{"/", "/fil%65s/x", "files"},
		{"/shop", "/shop/api/x", "api"},
		{"/shop", "/Shop/Files", "files"},
		{"/shop", "/shop/other", "root"},
	} {
		if got := s.For(&pipeline.Request{AppPath: tc.app, Path: tc.path}); got != tc.want {
			t.Errorf("app %s, %s: %s, want %s", tc.app, tc.path, got, tc.want)
		}
	}
	if got := s.For(nil); got != "root" {
		t.Errorf("nil request: %s", got)
	}
}
