package app

import (
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

func TestPoolEnv(t *testing.T) {
	t.Parallel()
	base := []string{"PATH=/opt/bin", "HOME=/root", "USER=root", "SECRET=x", "LANG=C.UTF-8", "LOGNAME=root"}
	id := &supervisor.Identity{User: "www1", UID: 1001, GID: 1001, Home: "/srv/www1"}
	noHome := &supervisor.Identity{User: "1234", UID: 1234, GID: 1234}
	tests := []struct {
		name  string
		base  []string
		clean bool
		id    *supervisor.Identity
		want  []string
	}{
		{"unchanged", base, false, nil, base},
		{"clean", base, true, nil, []string{"PATH=/opt/bin", "LANG=C.UTF-8", "HOME=/root", "USER=root", "LOGNAME=root"}},
		{"clean without PATH", []string{"SECRET=x"}, true, nil, []string{"PATH=" + DefaultPath}},
		{"identity", base, false, id, []string{"PATH=/opt/bin", "SECRET=x", "LANG=C.UTF-8",
			"HOME=/srv/www1", "USER=www1", "LOGNAME=www1"}},
		{"clean identity", base, true, id, []string{"PATH=/opt/bin", "LANG=C.UTF-8",
			"HOME=/srv/www1", "USER=www1", "LOGNAME=www1"}},
		{"identity without home drops Gatehouse's", base, false, noHome, []string{"PATH=/opt/bin", "SECRET=x", "LANG=C.UTF-8",
			"USER=1234", "LOGNAME=1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.base)
			got := poolEnv(in, tt.clean, tt.id)
			if !slices.Equal(got, tt.want) {
				t.Errorf("poolEnv =\n %q\nwant\n %q", got, tt.want)
			}
			if !slices.Equal(in, tt.base) {
				t.Errorf("poolEnv changed its input: %q", in)
			}
		})
	}
}
