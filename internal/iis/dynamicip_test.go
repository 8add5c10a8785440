package iis

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// clock is a settable time for the stage.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func dynamicStage(t *testing.T, cfg config.DynamicIPSecurity) (*DynamicIPSecurity, *clock) {
	t.Helper()
	if cfg.DenyAction == "" {
		cfg.DenyAction = "Forbidden"
	}
	s := NewDynamicIPSecurity(&cfg, slog.New(slog.DiscardHandler))
	if s == nil {
		t.Fatal("no stage")
	}
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = c.now
	return s, c
}

func code(res *pipeline.Result) string {
	if res == nil {
		return "pass"
	}
	if res.Abort {
		return "abort"
	}
	return res.Code()
}

func TestDynamicIPSecurityRate(t *testing.T) {
	t.Parallel()
	s, c := dynamicStage(t, config.DynamicIPSecurity{MaxRequests: 3, RequestInterval: time.Second})
	a := &pipeline.Request{ClientIP: netip.MustParseAddr("10.0.0.1")}
	b := &pipeline.Request{ClientIP: netip.MustParseAddr("::ffff:10.0.0.2")}
	for i, want := range []string{"pass", "pass", "pass", "403.502", "403.502"} {
		if got := code(s.Serve(a)); got != want {
			t.Errorf("request %d of a: %s, want %s", i+1, got, want)
		}
	}
	if got := code(s.Serve(b)); got != "pass" {
		t.Errorf("another client: %s, want pass", got)
	}
	c.t = c.t.Add(time.Second)
	if got := code(s.Serve(a)); got != "pass" {
		t.Errorf("a in the next interval: %s, want pass", got)
	}
	if _, inFlight, requests := s.tracked(); inFlight+requests != 0 {
		t.Errorf("a rate limit alone tracks requests in progress: %d, %d", inFlight, requests)
	}
}

func TestDynamicIPSecurityConcurrent(t *testing.T) {
	t.Parallel()
	s, _ := dynamicStage(t, config.DynamicIPSecurity{MaxConcurrentRequests: 2, DenyAction: "NotFound"})
	ip := netip.MustParseAddr("192.0.2.9")
	r1, r2, r3 := &pipeline.Request{ClientIP: ip}, &pipeline.Request{ClientIP: ip}, &pipeline.Request{ClientIP: ip}
	if code(s.Serve(r1)) != "pass" || code(s.Serve(r2)) != "pass" {
		t.Fatal("the first two requests were denied")
	}
	if got := code(s.Serve(r3)); got != "404.501" {
		t.Errorf("third request in progress: %s, want 404.501", got)
	}
	s.RequestDone(&pipeline.Done{Request: r3}) // denied: never counted in
	s.RequestDone(&pipeline.Done{Request: r1})
	if got := code(s.Serve(r3)); got != "pass" {
		t.Errorf("after one finished: %s, want pass", got)
	}
	// A Request reused without its end observed here (rewritten into
	// another application) is counted out when it comes back.
	if got := code(s.Serve(r2)); got != "pass" {
		t.Errorf("a reused request: %s, want pass", got)
	}
	s.RequestDone(&pipeline.Done{Request: r2})
	s.RequestDone(&pipeline.Done{Request: r3})
	if _, inFlight, requests := s.tracked(); inFlight != 0 || requests != 0 {
		t.Errorf("after every request finished: %d clients, %d requests still counted", inFlight, requests)
	}

	// The front door tells of a request's end before its answer's end is
	// sent (RequestEnded), then reports it done: it is counted out once.
	r4 := &pipeline.Request{ClientIP: ip}
	for _, r := range []*pipeline.Request{r1, r2} {
		if code(s.Serve(r)) != "pass" {
			t.Fatal("denied with none in progress")
		}
	}
	s.RequestEnded(r1)
	if got := code(s.Serve(r4)); got != "pass" {
		t.Errorf("after one ended: %s, want pass", got)
	}
	for _, r := range []*pipeline.Request{r1, r2, r4} {
		s.RequestEnded(r)
		s.RequestDone(&pipeline.Done{Request: r})
	}
	if _, inFlight, requests := s.tracked(); inFlight != 0 || requests != 0 {
		t.Errorf("after every request ended: %d clients, %d requests still counted", inFlight, requests)
	}
}

func TestDynamicIPSecurityLoggingOnlyAndAbort(t *testing.T) {
	t.Parallel()
	s, _ := dynamicStage(t, config.DynamicIPSecurity{MaxRequests: 1, RequestInterval: time.Minute, LoggingOnly: true})
	r := &pipeline.Request{ClientIP: netip.MustParseAddr("192.0.2.1")}
	for range 3 {
		if got := code(s.Serve(r)); got != "pass" {
			t.Errorf("logging only: %s, want pass", got)
		}
	}
	s, _ = dynamicStage(t, config.DynamicIPSecurity{MaxRequests: 1, RequestInterval: time.Minute, DenyAction: "AbortRequest"})
	s.Serve(r)
	if got := code(s.Serve(r)); got != "abort" {
		t.Errorf("AbortRequest: %s", got)
	}
}

// A flood from more addresses than MaxTrackedClients in one interval holds
// at most MaxTrackedClients entries, and the next interval lets them go.
func TestDynamicIPSecurityFloodBounded(t *testing.T) {
	t.Parallel()
	s, c := dynamicStage(t, config.DynamicIPSecurity{MaxRequests: 5, RequestInterval: time.Second, MaxConcurrentRequests: 10})
	var r pipeline.Request
	for i := range MaxTrackedClients + 5000 {
		r.ClientIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s.Serve(&r)
		s.RequestDone(&pipeline.Done{Request: &r})
	}
	if rates, inFlight, requests := s.tracked(); rates != MaxTrackedClients || inFlight != 0 || requests != 0 {
		t.Errorf("after the flood: %d rates, %d in flight, %d requests; want %d, 0, 0", rates, inFlight, requests, MaxTrackedClients)
	}
	c.t = c.t.Add(time.Second)
	r.ClientIP = netip.MustParseAddr("10.255.255.255")
	s.Serve(&r)
	if rates, _, _ := s.tracked(); rates != 1 {
		t.Errorf("the next interval holds %d clients, want 1", rates)
	}
}
