package metrics

import (
	"strconv"

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
	byClass    [6]*counter
	duration   *histogram
	firstByte  *histogram
	bytesIn    *counter
	bytesOut   *counter
	websockets *counter

	starts, startFailures, restarts, rapidFails, recycles *counter
	startup                                               *histogram
}

var _ pipeline.Observer = (*App)(nil)

// App returns the instrumentation of the app mounted at path in site.
// Calling it again for the same names returns collectors on the same
// series.
func (m *Metrics) App(site, app string) *App {
	a := &App{m: m, site: site, app: app,
		duration:      m.duration.With(site, app),
		firstByte:     m.firstByte.With(site, app),
		bytesIn:       m.bytesIn.With(site, app),
		bytesOut:      m.bytesOut.With(site, app),
		websockets:    m.websockets.With(site, app),
		starts:        m.starts.With(site, app),
		startFailures: m.startFailures.With(site, app),
		restarts:      m.restarts.With(site, app),
		rapidFails:    m.rapidFails.With(site, app),
		recycles:      m.recycles.With(site, app),
		startup:       m.startup.With(site, app),
	}
	a.byClass[0] = m.requests.With(site, app, "other", "0")
	for c := 1; c <= 5; c++ {
		a.byClass[c] = m.requests.With(site, app, strconv.Itoa(c)+"xx", "0")
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
		a.m.requests.With(a.site, a.app, statusClass(d.Status), strconv.Itoa(d.Substatus)).Inc()
	}
	a.duration.Observe(d.Duration.Seconds())
	if d.FirstByte > 0 {
		a.firstByte.Observe(d.FirstByte.Seconds())
	}
	if d.BytesIn > 0 {
		a.bytesIn.Add(uint64(d.BytesIn))
	}
	if d.BytesOut > 0 {
		a.bytesOut.Add(uint64(d.BytesOut))
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
		a.m.exits.With(a.site, a.app, string(ev.Cause)).Inc()
		if ev.Cause == supervisor.CauseCrash || ev.Cause == supervisor.CauseOOM {
			a.restarts.Inc()
		}
	case supervisor.RecycleConditionMet:
		a.m.conditions.With(a.site, a.app, ev.Condition).Inc()
	case supervisor.RapidFailTripped:
		a.rapidFails.Inc()
	}
}

// Forget removes the app's series, for an app a reload removed; a later
// app of the same names starts its counters at zero.
func (m *Metrics) Forget(site, app string) {
	for _, v := range []*vec[*counter]{m.requests, m.exits, m.bytesIn, m.bytesOut, m.websockets,
		m.starts, m.startFailures, m.restarts, m.rapidFails, m.recycles} {
		v.DeleteMatching("site", site, "app", app)
	}
	for _, v := range []*vec[*histogram]{m.duration, m.firstByte, m.startup} {
		v.DeleteMatching("site", site, "app", app)
	}
}
