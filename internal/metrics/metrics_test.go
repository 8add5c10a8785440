package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, nil)
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
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("requests%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(m.bytesOut.WithLabelValues("shop", "/api")); got != 105 {
		t.Errorf("response bytes = %v, want 105", got)
	}
	if got := testutil.ToFloat64(m.bytesIn.WithLabelValues("shop", "/api")); got != 10 {
		t.Errorf("request bytes = %v, want 10", got)
	}
	if got := testutil.ToFloat64(m.websockets.WithLabelValues("shop", "/api")); got != 1 {
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
	reg := prometheus.NewRegistry()
	m := New(reg, func() []AppGauges {
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
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metric names and help break Prometheus conventions: %v %v", problems, err)
	}
}

func TestTLSHandshakeMetrics(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry(), nil)
	m.TLSHandshake("https://:443", nil)
	m.TLSHandshake("https://:443", nil)
	m.TLSHandshake("https://:443", errors.New("bad record MAC"))
	if got := testutil.ToFloat64(m.tlsHandshakes.WithLabelValues("https://:443")); got != 2 {
		t.Errorf("handshakes = %v", got)
	}
	if got := testutil.ToFloat64(m.tlsErrors.WithLabelValues("https://:443")); got != 1 {
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
	a := New(prometheus.NewRegistry(), nil).App("default", "/")
	d := pipeline.Done{Status: 200, Duration: 3 * time.Millisecond, FirstByte: 2 * time.Millisecond, BytesIn: 10, BytesOut: 100}
	b.ReportAllocs()
	for b.Loop() {
		a.RequestDone(&d)
	}
}

func TestCertificateExpiry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, nil)
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	m.WatchCertificates(reg, func() []Cert {
		return []Cert{{Listener: "https://:443", Host: "www.example.com", Subject: "www.example.com", NotAfter: exp}}
	})
	want := `gatehouse_tls_certificate_expiry_timestamp_seconds{host="www.example.com",listener="https://:443",subject="www.example.com"} 1.8038592e+09`
	if body := scrape(t, m); !strings.Contains(body, want) {
		t.Errorf("exposition lacks %q", want)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry(), nil)
	m.App("s", "/gone").RequestDone(&pipeline.Done{Status: 200})
	m.App("s", "/kept").RequestDone(&pipeline.Done{Status: 200})
	m.Forget("s", "/gone")
	body := scrape(t, m)
	if strings.Contains(body, `app="/gone"`) || !strings.Contains(body, `app="/kept"`) {
		t.Errorf("after Forget:\n%s", body)
	}
}
