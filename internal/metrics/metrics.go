// Package metrics is Gatehouse's Prometheus instrumentation. A Metrics is
// built on a registry the caller owns (no package globals); it listens to
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	reg prometheus.Gatherer

	requests   *prometheus.CounterVec   // site, app, status_class, substatus
	duration   *prometheus.HistogramVec // site, app
	firstByte  *prometheus.HistogramVec // site, app
	bytesIn    *prometheus.CounterVec   // site, app
	bytesOut   *prometheus.CounterVec   // site, app
	websockets *prometheus.CounterVec   // site, app

	starts        *prometheus.CounterVec   // site, app
	startFailures *prometheus.CounterVec   // site, app
	exits         *prometheus.CounterVec   // site, app, cause
	restarts      *prometheus.CounterVec   // site, app
	rapidFails    *prometheus.CounterVec   // site, app
	recycles      *prometheus.CounterVec   // site, app
	conditions    *prometheus.CounterVec   // site, app, condition
	startup       *prometheus.HistogramVec // site, app

	tlsHandshakes *prometheus.CounterVec // listener
	tlsErrors     *prometheus.CounterVec // listener
}

// latencyBuckets cover a fast loopback app (1 ms) to requestTimeout-scale
// waits (2 min).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// startupBuckets cover an app that listens at once to startupTimeLimit (2 min).
var startupBuckets = []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60, 120}

// New registers Gatehouse's collectors, the Go runtime's and the process's
// on reg. apps, if set, is called at each scrape for the gauges; it must
// be quick and safe for concurrent use.
func New(reg *prometheus.Registry, apps func() []AppGauges) *Metrics {
	app := []string{"site", "app"}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "Requests answered, by site, app, status class (2xx…5xx) and IIS substatus (5 for 502.5; 0 if none).",
		}, append(app, "status_class", "substatus")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_request_duration_seconds",
			Help:    "Time from the request header to the last byte of the response.",
			Buckets: latencyBuckets,
		}, app),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_app_time_to_first_byte_seconds",
			Help:    "Time from the request header to the app's response header (requests the app answered).",
			Buckets: latencyBuckets,
		}, app),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_request_body_bytes_total",
			Help: "Request body bytes received from clients.",
		}, app),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_response_body_bytes_total",
			Help: "Response body bytes sent to clients.",
		}, app),
		websockets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_websocket_connections_total",
			Help: "Upgraded (WebSocket) connections, counted when they end; open ones are in gatehouse_requests_in_flight.",
		}, app),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_process_starts_total",
			Help: "App processes spawned.",
		}, app),
		startFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_process_start_failures_total",
			Help: "App starts that failed (exited during startup, not ready within startupTimeLimit, program not found).",
		}, app),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_process_exits_total",
			Help: "App processes that ended, by cause: crash, oom, start_failure, recycle, stop, idle, shutdown.",
		}, append(app, "cause")),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_process_restarts_total",
			Help: "Crashes (OOM kills included) of ready app processes; each is replaced on the next request.",
		}, app),
		rapidFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_rapid_fail_trips_total",
			Help: "Times rapidFailsPerMinute was exceeded and starts were paused until the window ended.",
		}, app),
		recycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_process_recycles_total",
			Help: "App processes replaced by a recycle (web.config change, gatehouse recycle, restart marker).",
		}, app),
		conditions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_recycle_conditions_total",
			Help: "App recycles caused by an application pool recycling condition: time, schedule, requests, privateMemory.",
		}, append(app, "condition")),
		startup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_process_startup_duration_seconds",
			Help:    "Time from spawning an app process until it was ready.",
			Buckets: startupBuckets,
		}, app),
		tlsHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_tls_handshakes_total",
			Help: "TLS handshakes completed, by listener.",
		}, []string{"listener"}),
		tlsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_tls_handshake_errors_total",
			Help: "TLS handshakes that failed, by listener.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.requests, m.duration, m.firstByte, m.bytesIn, m.bytesOut, m.websockets,
		m.starts, m.startFailures, m.exits, m.restarts, m.rapidFails, m.recycles, m.conditions, m.startup,
		m.tlsHandshakes, m.tlsErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if apps != nil {
		reg.MustRegister(&gaugeCollector{apps: apps})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// TLSHandshake counts a finished handshake on listener (ok or failed).
func (m *Metrics) TLSHandshake(listener string, err error) {
	if err != nil {
		m.tlsErrors.WithLabelValues(listener).Inc()
		return
	}
	m.tlsHandshakes.WithLabelValues(listener).Inc()
}

// gaugeCollector reads the apps' gauges at scrape time.
type gaugeCollector struct {
	apps func() []AppGauges
}

var (
	inFlightDesc = prometheus.NewDesc("gatehouse_requests_in_flight",
		"Requests (and open WebSockets) an app process is serving.", []string{"site", "app"}, nil)
	queuedDesc = prometheus.NewDesc("gatehouse_requests_queued",
		"Requests waiting for an app process to be ready.", []string{"site", "app"}, nil)
	processesDesc = prometheus.NewDesc("gatehouse_processes",
		"App processes by state: starting, ready, draining, stopping.", []string{"site", "app", "state"}, nil)
)

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inFlightDesc
	ch <- queuedDesc
	ch <- processesDesc
}

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.apps() {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(a.InFlight), a.Site, a.App)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(a.Queued), a.Site, a.App)
		for _, st := range []string{"starting", "ready", "draining", "stopping"} {
			ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(a.Processes[st]), a.Site, a.App, st)
		}
	}
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

// WatchCertificates registers gatehouse_tls_certificate_expiry_timestamp_seconds,
// read from certs at each scrape. Call it once.
func (m *Metrics) WatchCertificates(reg *prometheus.Registry, certs func() []Cert) {
	reg.MustRegister(&certCollector{certs: certs})
}

var certExpiryDesc = prometheus.NewDesc("gatehouse_tls_certificate_expiry_timestamp_seconds",
	"When the certificate of an https binding expires (Unix time); alert on it minus time().",
	[]string{"listener", "host", "subject"}, nil)

type certCollector struct{ certs func() []Cert }

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[3]string]bool{}
	for _, ct := range c.certs() {
		k := [3]string{ct.Listener, ct.Host, ct.Subject}
		if seen[k] {
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue,
			float64(ct.NotAfter.Unix()), ct.Listener, ct.Host, ct.Subject)
	}
}
