package monoclock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/monoclock"
)

// TestTimeIsMonotonic checks that Time's instants carry a monotonic
// reading and compare with time.Now's in the order they were taken.
func TestTimeIsMonotonic(t *testing.T) {
	before := monoclock.Time(monoclock.Now())
	now := time.Now()
	after := monoclock.Time(monoclock.Now())
	if !strings.Contains(before.String(), " m=") {
		t.Fatalf("Time(Now()) = %v, without a monotonic reading", before)
	}
	if before.After(now) || after.Before(now) || after.Sub(before) < 0 {
		t.Fatalf("before %v, now %v, after %v: out of order", before, now, after)
	}
}
