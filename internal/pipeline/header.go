package pipeline

import (
	"net/http"
	"net/textproto"
)

// HTTPHeader is the Header of the net/http path: an http.Header seen
// through the stages' interface. Converting an http.Header to it and
// storing it in a Header does not allocate.
type HTTPHeader http.Header

var _ Header = HTTPHeader(nil)

// Get returns the first value of name.
func (h HTTPHeader) Get(name string) string { return http.Header(h).Get(name) }

// Values calls f for each value of name.
func (h HTTPHeader) Values(name string, f func(string) bool) {
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		if !f(v) {
			return
		}
	}
}

// Range calls f for each field. Map order is random; the values of one
// name come in order.
func (h HTTPHeader) Range(f func(name, value string) bool) {
	for k, vs := range h {
		for _, v := range vs {
			if !f(k, v) {
				return
			}
		}
	}
}

// Set replaces the values of name.
func (h HTTPHeader) Set(name, value string) { http.Header(h).Set(name, value) }

// Add appends a value to name.
func (h HTTPHeader) Add(name, value string) { http.Header(h).Add(name, value) }

// Del removes name.
func (h HTTPHeader) Del(name string) { http.Header(h).Del(name) }
