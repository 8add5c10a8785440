package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// forwardHandler serves an *http.Request through Handler.Forward, the way
// the front door does: the request is described as a pipeline.Request.
type forwardHandler struct {
	h *Handler
	// describe, if set, changes the description before Forward (what the
	// front door's stages would set: Identity, a trusted proxy's ClientIP).
	describe func(*pipeline.Request)
}

func (f forwardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pr := &pipeline.Request{
		Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Proto: r.Proto,
		RemoteAddr: r.RemoteAddr, Header: pipeline.HTTPHeader(r.Header), ContentLength: r.ContentLength, TLS: r.TLS,
	}
	if r.URL.Opaque != "" || pr.Path == "" {
		pr.Path = r.URL.RequestURI()
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		pr.ClientIP = ap.Addr().Unmap()
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		pr.LocalAddr = a.String()
	}
	if r.Trailer != nil {
		pr.Trailer = pipeline.HTTPHeader(r.Trailer)
	}
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = r.Body
		_ = http.NewResponseController(w).EnableFullDuplex()
	} else {
		pr.ContentLength = 0
	}
	if f.describe != nil {
		f.describe(pr)
	}
	f.h.Forward(r.Context(), w, pr, body)
	if body != nil {
		// With full duplex on, net/http's HTTP/1 server reads a body the
		// handler left unread (Forward does when the app cannot be
		// reached) only after the handler returned, in a Close that starts
		// its background read of the connection after it stopped the last
		// one, and then panics reading the next request ("invalid
		// concurrent Body.Read call", golang/go#68560). Closed here, while
		// the handler runs, that background read is stopped as it should.
		_ = r.Body.Close()
	}
}

// headerSink adds forwarded fields to an http.Header.
type headerSink http.Header

func (h headerSink) add(name, value string) {
	k := http.CanonicalHeaderKey(name)
	h[k] = append(h[k], value)
}
