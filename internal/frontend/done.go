package frontend

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// finish reports the finished request to the observers: the site's (the
// access log) and those of the application that took it, whose settings in
// force were cur (nil: no application). A request its client left (closed
// the connection, reset the stream) before any answer is reported as 499;
// one whose answer could not be written in full keeps its status. Both are
// ClientGone.
func (st *reqState) finish(site *siteRoute, app *appRoute, cur pipeline.App, start time.Time) {
	var chain *pipeline.Chain
	if cur != nil {
		chain = cur.Chain()
	}
	if len(site.observers) == 0 && (chain == nil || len(chain.Observers) == 0) {
		return
	}
	status := st.rw.status
	if st.rw.logStatus != 0 && status != 0 {
		status = st.rw.logStatus
	}
	gone := st.rw.writeFailed || status == 0 && st.rw.clientLeft(st.ctx)
	if gone && status == 0 {
		status = pipeline.StatusClientClosedRequest
	}
	if status == 0 {
		if st.rw.hijacked {
			status = http.StatusSwitchingProtocols
		} else {
			status = http.StatusOK
		}
	}
	// A WebSocket over HTTP/2 or HTTP/3 (extended CONNECT) switched
	// protocols when it was answered 200: it is an upgraded connection
	// as a hijacked HTTP/1.1 one is, for the metrics and the log.
	upgraded := st.rw.hijacked || st.rw.status == http.StatusOK && st.req.Method == http.MethodConnect &&
		st.req.Header != nil && st.req.Header.Get(":protocol") != ""
	// An upgraded connection's bytes are its body's, as a tunnel's are
	// (its stream's DATA): its report comes once it closed.
	in, out := st.body.n, st.rw.written
	if c := st.rw.upgraded; c != nil {
		in, out = in+c.in.Load(), out+c.out.Load()
	}
	d := &st.done
	*d = pipeline.Done{
		Request: &st.req, Start: start, Duration: time.Since(start),
		Status: status, Substatus: st.rw.substatus, BytesIn: in, BytesOut: out,
		Upgraded: upgraded, PID: st.rw.pid, ClientGone: gone,
	}
	if !st.rw.appHeader.IsZero() {
		d.FirstByte = st.rw.appHeader.Sub(start)
	}
	if app != nil {
		d.App = app.path
	}
	for _, o := range site.observers {
		o.RequestDone(d)
	}
	if chain != nil {
		for _, o := range chain.Observers {
			o.RequestDone(d)
		}
	}
	*d = pipeline.Done{}
}
