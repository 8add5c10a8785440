package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// App is the instrumentation of one app, with its site and app labels
// bound once so that a request costs a few atomic adds and no label
// lookup. It is a pipeline.Observer (requests) and its ProcessEvent is a
// supervisor.Spec.Events sink (processes).
type App struct {
	m         *Metrics
	site, app string

	// byClass[c] counts status class c ("1xx" = 1 … "5xx" = 5; 0 =
	// "other") with substatus 0, the common case.
	byClass    [6]prometheus.Counter
	duration   prometheus.Observer
	firstByte  prometheus.Observer
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	websockets prometheus.Counter

	starts, startFailures, restarts, rapidFails, recycles prometheus.Counter
	startup                                               prometheus.Observer
}

var _ pipeline.Observer = (*App)(nil)

// App returns the instrumentation of the app mounted at path in site.
// Calling it again for the same names returns collectors on the same
// series.
func (m *Metrics) App(site, app string) *App {
	a := &App{m: m, site: site, app: app,
		duration:      m.duration.WithLabelValues(site, app),
		firstByte:     m.firstByte.WithLabelValues(site, app),
		bytesIn:       m.bytesIn.WithLabelValues(site, app),
		bytesOut:      m.bytesOut.WithLabelValues(site, app),
		websockets:    m.websockets.WithLabelValues(site, app),
		starts:        m.starts.WithLabelValues(site, app),
		startFailures: m.startFailures.WithLabelValues(site, app),
		restarts:      m.restarts.WithLabelValues(site, app),
		rapidFails:    m.rapidFails.WithLabelValues(site, app),
		recycles:      m.recycles.WithLabelValues(site, app),
		startup:       m.startup.WithLabelValues(site, app),
	}
	a.byClass[0] = m.requests.WithLabelValues(site, app, "other", "0")
	for c := 1; c <= 5; c++ {
		a.byClass[c] = m.requests.WithLabelValues(site, app, strconv.Itoa(c)+"xx", "0")
	}
	return a
}

// RequestDone records one finished request. It runs on the request's
// goroutine.
func (a *App) RequestDone(d *pipeline.Done) {
	if d.Substatus == 0 {
		c := d.Status / 100
		if c < 1 || c > 5 {
			c = 0
		}
		a.byClass[c].Inc()
	} else {
		a.m.requests.WithLabelValues(a.site, a.app, statusClass(d.Status), strconv.Itoa(d.Substatus)).Inc()
	}
	a.duration.Observe(d.Duration.Seconds())
	if d.FirstByte > 0 {
		a.firstByte.Observe(d.FirstByte.Seconds())
	}
	if d.BytesIn > 0 {
		a.bytesIn.Add(float64(d.BytesIn))
	}
	if d.BytesOut > 0 {
		a.bytesOut.Add(float64(d.BytesOut))
	}
	if d.Upgraded {
		a.websockets.Inc()
	}
}

// ProcessEvent records one process lifecycle event.
func (a *App) ProcessEvent(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.ProcessStarted:
		a.starts.Inc()
	case supervisor.ProcessReady:
		a.startup.Observe(ev.Took.Seconds())
	case supervisor.ProcessRecycled:
		a.recycles.Inc()
	case supervisor.StartFailed:
		a.startFailures.Inc()
	case supervisor.ProcessExited:
		a.m.exits.WithLabelValues(a.site, a.app, string(ev.Cause)).Inc()
		if ev.Cause == supervisor.CauseCrash || ev.Cause == supervisor.CauseOOM {
			a.restarts.Inc()
		}
	case supervisor.RecycleConditionMet:
		a.m.conditions.WithLabelValues(a.site, a.app, ev.Condition).Inc()
	case supervisor.RapidFailTripped:
		a.rapidFails.Inc()
	}
}

// Forget removes the app's series, for an app a reload removed; a later
// app of the same names starts its counters at zero.
func (m *Metrics) Forget(site, app string) {
	labels := prometheus.Labels{"site": site, "app": app}
	m.requests.DeletePartialMatch(labels)
	m.exits.DeletePartialMatch(labels)
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.bytesOut, m.websockets, m.starts,
		m.startFailures, m.restarts, m.rapidFails, m.recycles} {
		v.DeletePartialMatch(labels)
	}
	for _, v := range []*prometheus.HistogramVec{m.duration, m.firstByte, m.startup} {
		v.DeletePartialMatch(labels)
	}
}
