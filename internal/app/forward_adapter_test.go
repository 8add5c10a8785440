package app

import (
	"io"
	"net/http"
	"net/netip"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// forwardHandler serves an *http.Request through the App's Forward, the
// way the front door does: the request is described as a
// pipeline.Request.
type forwardHandler struct{ a *App }

func (f forwardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pr := &pipeline.Request{
		Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Proto: r.Proto,
		RemoteAddr: r.RemoteAddr, Header: pipeline.HTTPHeader(r.Header), ContentLength: r.ContentLength, TLS: r.TLS,
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		pr.ClientIP = ap.Addr().Unmap()
	}
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = r.Body
	} else {
		pr.ContentLength = 0
	}
	f.a.Current().Forward(r.Context(), w, pr, body)
}
