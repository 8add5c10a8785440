package supervisor

import (
	"testing"
	"time"
)

func TestProbeDelay(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		elapsed time.Duration
		want    time.Duration
	}{
		{"at spawn", 0, ms / 2},
		{"fast app", 10 * ms, ms / 2},
		{"end of the fast phase", 32 * ms, ms / 2},
		{"grows with the wait", 128 * ms, 2 * ms},
		{"a slow app", 320 * ms, 5 * ms},
		{"capped", 640 * ms, 10 * ms},
		{"capped for good", time.Minute, 10 * ms},
		{"clock step backwards", -time.Second, ms / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := probeDelay(tc.elapsed); got != tc.want {
				t.Errorf("probeDelay(%v) = %v, want %v", tc.elapsed, got, tc.want)
			}
		})
	}
}
