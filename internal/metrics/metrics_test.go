package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	m := New(nil)
	a := m.App("shop", "/api")
	for _, d := range []pipeline.Done{
		{Status: 200, Duration: 3 * time.Millisecond, FirstByte: 2 * time.Millisecond, BytesIn: 10, BytesOut: 100, PID: 7},
		{Status: 204, Duration: time.Millisecond, FirstByte: time.Millisecond, PID: 7},
		{Status: 502, Substatus: 5, Duration: time.Second},
		{Status: 101, Duration: time.Minute, Upgraded: true, BytesOut: 5},
		{Status: 499, Duration: time.Millisecond},
	} {
		a.RequestDone(&d)
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"shop", "/api", "2xx", "0"}, 2},
		{[]string{"shop", "/api", "5xx", "5"}, 1},
		{[]string{"shop", "/api", "1xx", "0"}, 1},
		{[]string{"shop", "/api", "4xx", "0"}, 1},
	} {
		if got := float64(m.requests.With(tc.labels...).Value()); got != tc.want {
			t.Errorf("requests%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := float64(m.bytesOut.With("shop", "/api").Value()); got != 105 {
		t.Errorf("response bytes = %v, want 105", got)
	}
	if got := float64(m.bytesIn.With("shop", "/api").Value()); got != 10 {
		t.Errorf("request bytes = %v, want 10", got)
	}
	if got := float64(m.websockets.With("shop", "/api").Value()); got != 1 {
		t.Errorf("websockets = %v, want 1", got)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`gatehouse_request_duration_seconds_count{app="/api",site="shop"} 5`,
		// Only the two requests the app answered have a first byte.
		`gatehouse_app_time_to_first_byte_seconds_count{app="/api",site="shop"} 2`,
		`gatehouse_app_time_to_first_byte_seconds_bucket{app="/api",site="shop",le="0.001"} 1`,
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func TestProcessMetrics(t *testing.T) {
	t.Parallel()
	m := New(func() []AppGauges {
		return []AppGauges{{Site: "default", App: "/", InFlight: 3, Queued: 2, Processes: map[string]int{"ready": 1, "draining": 1}}}
	})
	a := m.App("default", "/")
	for _, ev := range []supervisor.Event{
		{Kind: supervisor.ProcessStarted, PID: 1},
		{Kind: supervisor.ProcessReady, PID: 1, Took: 300 * time.Millisecond},
		{Kind: supervisor.ProcessExited, PID: 1, Cause: supervisor.CauseCrash},
		{Kind: supervisor.ProcessStarted, PID: 2},
		{Kind: supervisor.StartFailed, PID: 2, Err: errors.New("x")},
		{Kind: supervisor.ProcessExited, PID: 2, Cause: supervisor.CauseStartFailure},
		{Kind: supervisor.RapidFailTripped},
		{Kind: supervisor.ProcessRecycled, PID: 3, Replaced: 2},
		{Kind: supervisor.ProcessExited, PID: 3, Cause: supervisor.CauseRecycle},
		{Kind: supervisor.RecycleConditionMet, PID: 4, Condition: supervisor.ConditionRequests},
		{Kind: supervisor.ProcessExited, PID: 4, Cause: supervisor.CauseOOM},
	} {
		a.ProcessEvent(ev)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`gatehouse_process_starts_total{app="/",site="default"} 2`,
		`gatehouse_process_start_failures_total{app="/",site="default"} 1`,
		`gatehouse_process_exits_total{app="/",cause="crash",site="default"} 1`,
		`gatehouse_process_exits_total{app="/",cause="start_failure",site="default"} 1`,
		`gatehouse_process_exits_total{app="/",cause="recycle",site="default"} 1`,
		`gatehouse_process_restarts_total{app="/",site="default"} 2`,
		`gatehouse_process_exits_total{app="/",cause="oom",site="default"} 1`,
		`gatehouse_recycle_conditions_total{app="/",condition="requests",site="default"} 1`,
		`gatehouse_rapid_fail_trips_total{app="/",site="default"} 1`,
		`gatehouse_process_recycles_total{app="/",site="default"} 1`,
		`gatehouse_process_startup_duration_seconds_bucket{app="/",site="default",le="0.5"} 1`,
		`gatehouse_process_startup_duration_seconds_bucket{app="/",site="default",le="0.25"} 0`,
		`gatehouse_requests_in_flight{app="/",site="default"} 3`,
		`gatehouse_requests_queued{app="/",site="default"} 2`,
		`gatehouse_processes{app="/",site="default",state="ready"} 1`,
		`gatehouse_processes{app="/",site="default",state="draining"} 1`,
		`gatehouse_processes{app="/",site="default",state="starting"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if problems, err := promlint.New(strings.NewReader(body)).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("metric names and help break Prometheus conventions: %v %v", problems, err)
	}
}

func TestTLSHandshakeMetrics(t *testing.T) {
	t.Parallel()
	m := New(nil)
	m.TLSHandshake("https://:443", nil)
	m.TLSHandshake("https://:443", nil)
	m.TLSHandshake("https://:443", errors.New("bad record MAC"))
	if got := float64(m.tlsHandshakes.With("https://:443").Value()); got != 2 {
		t.Errorf("handshakes = %v", got)
	}
	if got := float64(m.tlsErrors.With("https://:443").Value()); got != 1 {
		t.Errorf("errors = %v", got)
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("scrape = %d %s", rec.Code, b)
	}
	return string(b)
}

func BenchmarkRequestDone(b *testing.B) {
	a := New(nil).App("default", "/")
	d := pipeline.Done{Status: 200, Duration: 3 * time.Millisecond, FirstByte: 2 * time.Millisecond, BytesIn: 10, BytesOut: 100}
	b.ReportAllocs()
	for b.Loop() {
		a.RequestDone(&d)
	}
}

func TestCertificateExpiry(t *testing.T) {
	t.Parallel()
	m := New(nil)
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	m.WatchCertificates(func() []Cert {
		return []Cert{{Listener: "https://:443", Host: "www.example.com", Subject: "www.example.com", NotAfter: exp}}
	})
	want := `gatehouse_tls_certificate_expiry_timestamp_seconds{host="www.example.com",listener="https://:443",subject="www.example.com"} 1.8038592e+09`
	if body := scrape(t, m); !strings.Contains(body, want) {
		t.Errorf("exposition lacks %q", want)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	m := New(nil)
	m.App("s", "/gone").RequestDone(&pipeline.Done{Status: 200})
	m.App("s", "/kept").RequestDone(&pipeline.Done{Status: 200})
	m.Forget("s", "/gone")
	body := scrape(t, m)
	if strings.Contains(body, `app="/gone"`) || !strings.Contains(body, `app="/kept"`) {
		t.Errorf("after Forget:\n%s", body)
	}
}

// TestExpositionParses reads a scrape with every kind of family back with
// Prometheus' own text parser, and lints it.
func TestExpositionParses(t *testing.T) {
	t.Parallel()
	m := New(func() []AppGauges {
		return []AppGauges{{Site: `we"ird\site`, App: "/a\nb", InFlight: 1, Processes: map[string]int{"ready": 1}}}
	})
	m.WatchCertificates(func() []Cert {
		return []Cert{{Listener: "https://:443", Host: "h", Subject: "s", NotAfter: time.Unix(1e9, 0)}}
	})
	m.WatchDirectories(func() []Directory { return []Directory{{Site: "s", Up: true, Lookups: 3}} })
	a := m.App(`we"ird\site`, "/a\nb")
	a.RequestDone(&pipeline.Done{Status: 200, Duration: 7 * time.Millisecond, FirstByte: time.Millisecond, BytesOut: 3})
	a.RequestDone(&pipeline.Done{Status: 503, Substatus: 2, Duration: 5 * time.Minute})
	m.TLSHandshake("https://:443", nil)
	body := scrape(t, m)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	d := fams["gatehouse_request_duration_seconds"]
	if d == nil || len(d.Metric) != 1 {
		t.Fatalf("duration family = %v", d)
	}
	h := d.Metric[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 300.007 {
		t.Errorf("duration count, sum = %d, %v; want 2, 300.007", h.GetSampleCount(), h.GetSampleSum())
	}
	// 7 ms falls in le=0.01 and above; 5 min only in +Inf.
	for _, b := range h.Bucket {
		want := uint64(0)
		switch {
		case math.IsInf(b.GetUpperBound(), 1):
			want = 2
		case b.GetUpperBound() >= 0.01:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v = %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	for _, l := range d.Metric[0].Label {
		if want := map[string]string{"site": `we"ird\site`, "app": "/a\nb"}[l.GetName()]; l.GetValue() != want {
			t.Errorf("label %s = %q, want %q", l.GetName(), l.GetValue(), want)
		}
	}
	for _, name := range []string{"gatehouse_requests_total", "gatehouse_requests_in_flight", "gatehouse_processes",
		"gatehouse_tls_certificate_expiry_timestamp_seconds", "gatehouse_directory_up", "gatehouse_tls_handshakes_total",
		"go_goroutines", "go_gc_duration_seconds", "go_memstats_heap_inuse_bytes", "go_threads",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("exposition lacks %s", name)
		}
	}
	if rss := fams["process_resident_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); rss < 1<<20 {
		t.Errorf("resident memory = %v bytes", rss)
	}
	if problems, err := promlint.New(strings.NewReader(body)).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestScrapeGzip checks that a scraper that accepts gzip gets it, and one
// that refuses it does not.
func TestScrapeGzip(t *testing.T) {
	t.Parallel()
	m := New(nil)
	for _, tc := range []struct {
		accept string
		gz     bool
	}{{"gzip", true}, {"deflate, gzip;q=0.5", true}, {"gzip;q=0", false}, {"", false}, {"identity", false}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		m.Handler().ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.gz {
			t.Errorf("Accept-Encoding %q: gzip = %v, want %v", tc.accept, got, tc.gz)
			continue
		}
		if tc.gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Contains(body, []byte("# TYPE go_goroutines gauge\n")) {
			t.Errorf("Accept-Encoding %q: body %.200q", tc.accept, body)
		}
	}
}
