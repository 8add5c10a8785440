package logtest

import "testing"

func TestRecorderSharesRecordsAcrossWithAttrs(t *testing.T) {
	r := New()
	var hooked int
	r.Hook = func(Record) { hooked++ }
	log := r.Logger().With("app", "a")
	log.Info("process started", "pid", 7)
	r.Logger().Warn("other")
	got := r.Find("started")
	if len(got) != 1 || got[0].Attrs["app"] != "a" || got[0].Attrs["pid"] != "7" {
		t.Fatalf("Find = %+v, want one record with app=a pid=7", got)
	}
	if len(r.Find("")) != 2 || hooked != 2 {
		t.Errorf("records %d, hook calls %d; want 2 and 2", len(r.Find("")), hooked)
	}
}
