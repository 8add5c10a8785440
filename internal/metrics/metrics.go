// Package metrics is Gatehouse's Prometheus instrumentation. A Metrics
// holds its own series (no package globals) and serves them in
// Prometheus' text exposition format, with the Go runtime's and the
// process's figures; it listens to
// the events Gatehouse already produces — the request-done record of the
// pipeline and the process lifecycle events of the supervisor — instead of
// being threaded through the code, and reads gauges (requests in flight,
// queued, processes by state) from a snapshot function at scrape time.
//
// Labels are bounded: site and app (the configured names), status class
// ("2xx"), IIS substatus, exit cause. Never a path or a client.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// AppGauges is one app's point-in-time state, read at scrape time.
type AppGauges struct {
	Site, App string
	// InFlight counts requests (and WebSockets) an app process is serving;
	// Queued those waiting for a process.
	InFlight, Queued int
	// Processes counts the app's processes by state ("starting", "ready",
	// "draining", "stopping").
	Processes map[string]int
}

// Metrics holds Gatehouse's collectors. Create it with New. Its methods are
// safe for concurrent use.
type Metrics struct {
	requests   *vec[*counter]   // site, app, status_class, substatus
	duration   *vec[*histogram] // site, app
	firstByte  *vec[*histogram] // site, app
	bytesIn    *vec[*counter]   // site, app
	bytesOut   *vec[*counter]   // site, app
	websockets *vec[*counter]   // site, app

	starts        *vec[*counter]   // site, app
	startFailures *vec[*counter]   // site, app
	exits         *vec[*counter]   // site, app, cause
	restarts      *vec[*counter]   // site, app
	rapidFails    *vec[*counter]   // site, app
	recycles      *vec[*counter]   // site, app
	conditions    *vec[*counter]   // site, app, condition
	startup       *vec[*histogram] // site, app

	tlsHandshakes *vec[*counter] // listener
	tlsErrors     *vec[*counter] // listener

	apps func() []AppGauges

	mu    sync.Mutex // protects certs and dirs
	certs func() []Cert
	dirs  func() []Directory
}

// latencyBuckets cover a fast loopback app (1 ms) to requestTimeout-scale
// waits (2 min).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// startupBuckets cover an app that listens at once to startupTimeLimit (2 min).
var startupBuckets = []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60, 120}

// New returns Gatehouse's metrics, with the Go runtime's and the
// process's. apps, if set, is called at each scrape for the gauges; it
// must be quick and safe for concurrent use.
func New(apps func() []AppGauges) *Metrics {
	return &Metrics{
		requests: newCounterVec("gatehouse_requests_total",
			"Requests answered, by site, app, status class (2xx…5xx) and IIS substatus (5 for 502.5; 0 if none).",
			"site", "app", "status_class", "substatus"),
		duration: newHistogramVec("gatehouse_request_duration_seconds",
			"Time from the request header to the last byte of the response.", latencyBuckets, "site", "app"),
		firstByte: newHistogramVec("gatehouse_app_time_to_first_byte_seconds",
			"Time from the request header to the app's response header (requests the app answered).", latencyBuckets, "site", "app"),
		bytesIn: newCounterVec("gatehouse_request_body_bytes_total",
			"Request body bytes received from clients.", "site", "app"),
		bytesOut: newCounterVec("gatehouse_response_body_bytes_total",
			"Response body bytes sent to clients.", "site", "app"),
		websockets: newCounterVec("gatehouse_websocket_connections_total",
			"Upgraded (WebSocket) connections, counted when they end; open ones are in gatehouse_requests_in_flight.", "site", "app"),
		starts: newCounterVec("gatehouse_process_starts_total",
			"App processes spawned.", "site", "app"),
		startFailures: newCounterVec("gatehouse_process_start_failures_total",
			"App starts that failed (exited during startup, not ready within startupTimeLimit, program not found).", "site", "app"),
		exits: newCounterVec("gatehouse_process_exits_total",
			"App processes that ended, by cause: crash, oom, start_failure, recycle, stop, idle, shutdown.", "site", "app", "cause"),
		restarts: newCounterVec("gatehouse_process_restarts_total",
			"Crashes (OOM kills included) of ready app processes; each is replaced on the next request.", "site", "app"),
		rapidFails: newCounterVec("gatehouse_rapid_fail_trips_total",
			"Times rapidFailsPerMinute was exceeded and starts were paused until the window ended.", "site", "app"),
		recycles: newCounterVec("gatehouse_process_recycles_total",
			"App processes replaced by a recycle (web.config change, gatehouse recycle, restart marker).", "site", "app"),
		conditions: newCounterVec("gatehouse_recycle_conditions_total",
			"App recycles caused by an application pool recycling condition: time, schedule, requests, privateMemory.", "site", "app", "condition"),
		startup: newHistogramVec("gatehouse_process_startup_duration_seconds",
			"Time from spawning an app process until it was ready.", startupBuckets, "site", "app"),
		tlsHandshakes: newCounterVec("gatehouse_tls_handshakes_total",
			"TLS handshakes completed, by listener.", "listener"),
		tlsErrors: newCounterVec("gatehouse_tls_handshake_errors_total",
			"TLS handshakes that failed, by listener.", "listener"),
		apps: apps,
	}
}

// Handler serves the metrics in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveText(w, r, m.gather())
	})
}

// gather reads every family for a scrape.
func (m *Metrics) gather() []family {
	fams := []family{m.requests.family(), m.duration.family(), m.firstByte.family(), m.bytesIn.family(),
		m.bytesOut.family(), m.websockets.family(), m.starts.family(), m.startFailures.family(), m.exits.family(),
		m.restarts.family(), m.rapidFails.family(), m.recycles.family(), m.conditions.family(), m.startup.family(),
		m.tlsHandshakes.family(), m.tlsErrors.family()}
	if m.apps != nil {
		fams = append(fams, appFamilies(m.apps())...)
	}
	m.mu.Lock()
	certs, dirs := m.certs, m.dirs
	m.mu.Unlock()
	if certs != nil {
		fams = append(fams, certFamily(certs()))
	}
	if dirs != nil {
		fams = append(fams, directoryFamilies(dirs())...)
	}
	fams = append(fams, goFamilies()...)
	return append(fams, processFamilies()...)
}

// TLSHandshake counts a finished handshake on listener (ok or failed).
func (m *Metrics) TLSHandshake(listener string, err error) {
	if err != nil {
		m.tlsErrors.With(listener).Inc()
		return
	}
	m.tlsHandshakes.With(listener).Inc()
}

// appFamilies are the apps' gauges, read at scrape time.
func appFamilies(apps []AppGauges) []family {
	inFlight := newGaugeFamily("gatehouse_requests_in_flight",
		"Requests (and open WebSockets) an app process is serving.", "gauge")
	queued := newGaugeFamily("gatehouse_requests_queued",
		"Requests waiting for an app process to be ready.", "gauge")
	processes := newGaugeFamily("gatehouse_processes",
		"App processes by state: starting, ready, draining, stopping.", "gauge")
	for _, a := range apps {
		inFlight.add(float64(a.InFlight), "site", a.Site, "app", a.App)
		queued.add(float64(a.Queued), "site", a.Site, "app", a.App)
		for _, st := range []string{"starting", "ready", "draining", "stopping"} {
			processes.add(float64(a.Processes[st]), "site", a.Site, "app", a.App, "state", st)
		}
	}
	return []family{inFlight.family, queued.family, processes.family}
}

// statusClass returns "1xx".."5xx" for status, "other" outside 100–599.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Cert is a certificate in use, for the expiry gauge.
type Cert struct {
	Listener, Host, Subject string
	NotAfter                time.Time
}

// WatchCertificates adds gatehouse_tls_certificate_expiry_timestamp_seconds,
// read from certs at each scrape.
func (m *Metrics) WatchCertificates(certs func() []Cert) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.certs = certs
}

// certFamily is the expiry of each distinct (listener, host, subject).
func certFamily(certs []Cert) family {
	f := newGaugeFamily("gatehouse_tls_certificate_expiry_timestamp_seconds",
		"When the certificate of an https binding expires (Unix time); alert on it minus time().", "gauge")
	seen := map[[3]string]bool{}
	for _, ct := range certs {
		k := [3]string{ct.Listener, ct.Host, ct.Subject}
		if seen[k] {
			continue
		}
		seen[k] = true
		f.add(float64(ct.NotAfter.Unix()), "listener", ct.Listener, "host", ct.Host, "subject", ct.Subject)
	}
	return f.family
}
