package supervisor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---- helper app: pool endpoints ----

// heldMemory keeps what /alloc allocated, so it stays resident.
var heldMemory struct {
	sync.Mutex
	blocks [][]byte
}

// whoami is the /whoami reply: the credentials and umask the helper runs with.
type whoami struct {
	UID, GID int
	Groups   []int
	Umask    string
	Home     string
	User     string
	Cwd      string
}

// registerPoolHandlers adds the helper endpoints the pool tests use:
// /alloc?mb=N allocates and touches N MiB and keeps them; /whoami answers
// a whoami.
func registerPoolHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		heldMemory.Lock()
		heldMemory.blocks = append(heldMemory.blocks, b)
		heldMemory.Unlock()
		fmt.Fprintln(w, "allocated", mb, "MiB")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		groups, _ := syscall.Getgroups()
		me := whoami{UID: os.Getuid(), GID: os.Getgid(), Groups: groups, Home: os.Getenv("HOME"), User: os.Getenv("USER")}
		me.Cwd, _ = os.Getwd()
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			for line := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "Umask:"); ok {
					me.Umask = strings.TrimSpace(v)
				}
			}
		}
		json.NewEncoder(w).Encode(me)
	})
}

// ---- pure parts ----

func TestRecyclePolicyDue(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 27, 2, 59, 0, 0, time.UTC)
	proc := func(age time.Duration, reqs int, overFor time.Duration) procSnap {
		s := procSnap{pid: 42, started: base.Add(-age), requests: reqs, memory: 100 << 20}
		if overFor > 0 {
			s.overSince = base.Add(-overFor)
		}
		return s
	}
	at3 := []time.Duration{3 * time.Hour}
	tests := []struct {
		name  string
		pol   RecyclePolicy
		last  time.Time
		procs []procSnap
		want  string
	}{
		{"nothing set", RecyclePolicy{}, base.Add(-time.Second), []procSnap{proc(time.Hour, 1e6, time.Hour)}, ""},
		{"no process", RecyclePolicy{Time: time.Second}, base.Add(-time.Second), nil, ""},
		{"time not yet", RecyclePolicy{Time: time.Hour}, base.Add(-time.Second), []procSnap{proc(59*time.Minute, 0, 0)}, ""},
		{"time reached", RecyclePolicy{Time: time.Hour}, base.Add(-time.Second), []procSnap{proc(time.Hour, 0, 0)}, ConditionTime},
		{"second process old", RecyclePolicy{Time: time.Hour}, base.Add(-time.Second),
			[]procSnap{proc(time.Minute, 0, 0), proc(2*time.Hour, 0, 0)}, ConditionTime},
		{"requests below", RecyclePolicy{Requests: 10}, base.Add(-time.Second), []procSnap{proc(time.Hour, 9, 0)}, ""},
		{"requests reached", RecyclePolicy{Requests: 10}, base.Add(-time.Second), []procSnap{proc(time.Hour, 10, 0)}, ConditionRequests},
		{"memory not over", RecyclePolicy{PrivateMemory: 1, PrivateMemoryWindow: time.Second}, base.Add(-time.Second),
			[]procSnap{proc(time.Hour, 0, 0)}, ""},
		{"memory over, window not passed", RecyclePolicy{PrivateMemory: 1, PrivateMemoryWindow: time.Minute}, base.Add(-time.Second),
			[]procSnap{proc(time.Hour, 0, 30*time.Second)}, ""},
		{"memory over for the window", RecyclePolicy{PrivateMemory: 1, PrivateMemoryWindow: time.Minute}, base.Add(-time.Second),
			[]procSnap{proc(time.Hour, 0, time.Minute)}, ConditionPrivateMemory},
		{"schedule not yet", RecyclePolicy{Schedule: at3}, base.Add(-time.Second), []procSnap{proc(time.Hour, 0, 0)}, ""},
		{"schedule later today", RecyclePolicy{Schedule: at3}, base.Add(-time.Hour),
			[]procSnap{proc(time.Hour, 0, 0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, why := tt.pol.due(base, tt.last, tt.procs)
			if got != tt.want {
				t.Errorf("due = %q (%s), want %q", got, why, tt.want)
			}
			if got != "" && !strings.HasPrefix(why, "periodicRestart "+got) {
				t.Errorf("why = %q, want it to name periodicRestart %s", why, got)
			}
		})
	}
	// The schedule fires once the check passes 03:00.
	pol := RecyclePolicy{Schedule: at3}
	if got, _, why := pol.due(base.Add(time.Minute), base.Add(59*time.Second), []procSnap{proc(time.Hour, 0, 0)}); got != ConditionSchedule {
		t.Errorf("at 03:00: due = %q (%s), want schedule", got, why)
	}
}

func TestScheduledBetween(t *testing.T) {
	t.Parallel()
	day := func(h, m, s int) time.Time { return time.Date(2026, 11, 27, h, m, s, 0, time.UTC) }
	sched := []time.Duration{3 * time.Hour, 15*time.Hour + 30*time.Minute + 10*time.Second}
	tests := []struct {
		name        string
		after, upTo time.Time
		want        time.Time
	}{
		{"before", day(2, 0, 0), day(2, 59, 59), time.Time{}},
		{"exactly at upTo", day(2, 59, 59), day(3, 0, 0), day(3, 0, 0)},
		{"at after is excluded", day(3, 0, 0), day(3, 0, 1), time.Time{}},
		{"seconds count", day(15, 30, 9), day(15, 30, 10), day(15, 30, 10)},
		{"over midnight", day(23, 59, 0), day(23, 59, 0).Add(3*time.Hour + time.Minute), day(3, 0, 0).AddDate(0, 0, 1)},
		{"first of two", day(0, 0, 0), day(23, 0, 0), day(3, 0, 0)},
		{"time going back", day(4, 0, 0), day(2, 0, 0), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := scheduledBetween(sched, tt.after, tt.upTo)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("scheduledBetween(%s, %s) = %s %v, want %s", tt.after, tt.upTo, got, ok, tt.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{512: "512 B", 64 << 20: "64 MiB", 1536 << 20: "1.5 GiB", 4096: "4 KiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMemoryInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		window, tick, want time.Duration
	}{
		{30 * time.Second, time.Second, 5 * time.Second},
		{8 * time.Second, time.Second, 2 * time.Second},
		{0, time.Second, time.Second},
		{100 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := (RecyclePolicy{PrivateMemoryWindow: tt.window}).memoryInterval(tt.tick); got != tt.want {
			t.Errorf("memoryInterval(window %s, tick %s) = %s, want %s", tt.window, tt.tick, got, tt.want)
		}
	}
}
