package proxy

import (
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func TestSetIdentity(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	setIdentity(headerSink(h), &pipeline.Identity{Name: "jürgen 100%@EXAMPLE.COM", Scheme: "Negotiate", Groups: []string{"S-1-5-32-544", "a,b"}, Reply: "Negotiate secret"})
	want := map[string]string{
		"MS-ASPNETCORE-USER":     "j%C3%BCrgen 100%25@EXAMPLE.COM",
		"MS-ASPNETCORE-AUTHTYPE": "Negotiate",
		"MS-ASPNETCORE-GROUPS":   "S-1-5-32-544,a%2Cb",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(h) != 3 {
		t.Errorf("header = %v, want only the three identity headers (never the reply token)", h)
	}
	h = http.Header{}
	setIdentity(headerSink(h), &pipeline.Identity{Name: "alice", Scheme: "Basic"})
	if _, ok := h["Ms-Aspnetcore-Groups"]; ok {
		t.Errorf("groups header set with no groups: %v", h)
	}
}
