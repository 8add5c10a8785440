package frontend

import "testing"

func TestAutoMaxConnections(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	for _, tc := range []struct {
		mem, nofile uint64
		want        int
	}{
		{4 * gib, 1 << 20, 4096},
		{1 * gib, 1 << 20, 1024},
		{64 * gib, 1 << 20, 50000},
		{64 * gib, 20000, 9968},
		{256 << 20, 1 << 20, 256},
		{0, 0, 50000},
		{4 * gib, 1024, 480},
	} {
		if got := autoMaxConnections(tc.mem, tc.nofile); got != tc.want {
			t.Errorf("autoMaxConnections(%d MiB, %d) = %d, want %d", tc.mem>>20, tc.nofile, got, tc.want)
		}
	}
	if got := effectiveMaxConnections(-1); got != 0 {
		t.Errorf("effectiveMaxConnections(-1) = %d, want 0 (unlimited)", got)
	}
	if got := effectiveMaxConnections(7); got != 7 {
		t.Errorf("effectiveMaxConnections(7) = %d", got)
	}
	if got := effectiveMaxConnections(0); got < minAutoConnections || got > maxAutoConnections {
		t.Errorf("effectiveMaxConnections(0) = %d, out of bounds", got)
	}
}
