package pipeline

import (
	"net/http"
	"net/textproto"
	"strings"
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

// ResponseHeader is a response header on its way out, as the outbound
// stages see it. Its keys keep the case the app or the web.config wrote
// (ResponseKey), so HTTP/1.1 sends "X-XSS-Protection" and "ETag" as
// written, as IIS and nginx do; its methods match names without regard to
// case, whatever case a key has. Converting an http.Header to it does not
// allocate, and neither do its methods (but Set and Add of a new name).
type ResponseHeader http.Header

var _ Header = ResponseHeader(nil)

// framingKeys are the response fields that net/http, the lean HTTP/1.1
// writer and the proxy look up by their canonical key: they frame the
// response or belong to the connection.
var framingKeys = [...]string{
	"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Date", "Keep-Alive",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// ResponseKey returns the key a response field named name is stored under
// in an http.Header: the canonical key for the fields the response is
// framed by (Content-Length, Connection, …), else name as written. A name
// spelled as its key (as apps send them) is found by a switch (a length,
// then one or two comparisons the compiler writes out), before the
// case-insensitive comparison with the keys of its length.
func ResponseKey(name string) string {
	switch name { // each as its key (framingKeys)
	case "Connection", "Content-Encoding", "Content-Length", "Content-Type", "Date", "Keep-Alive",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return name
	}
	if len(name) < len(framingByLen) {
		for _, k := range framingByLen[len(name)] {
			if k == name || strings.EqualFold(k, name) {
				return k
			}
		}
	}
	return name
}

// framingByLen holds framingKeys by length: a response field is compared
// with the keys of its own length only (one at most for most lengths).
var framingByLen = func() (t [len("Transfer-Encoding") + 1][]string) {
	for _, k := range framingKeys {
		t[len(k)] = append(t[len(k)], k)
	}
	return t
}()

// key returns the key of h that matches name without case, and whether
// there is one.
func (h ResponseHeader) key(name string) (string, bool) {
	if _, ok := h[name]; ok {
		return name, true
	}
	for k := range h {
		if len(k) == len(name) && strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

// Get returns the first value of name.
func (h ResponseHeader) Get(name string) string {
	if k, ok := h.key(name); ok && len(h[k]) > 0 {
		return h[k][0]
	}
	return ""
}

// Values calls f for each value of name, those of every key that matches.
func (h ResponseHeader) Values(name string, f func(string) bool) {
	for k, vs := range h {
		if len(k) != len(name) || !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			if !f(v) {
				return
			}
		}
	}
}

// Range calls f for each field with its key as stored.
func (h ResponseHeader) Range(f func(name, value string) bool) { HTTPHeader(h).Range(f) }

// Set replaces every value of name with value, under ResponseKey(name).
func (h ResponseHeader) Set(name, value string) {
	h.Del(name)
	h[ResponseKey(name)] = []string{value}
}

// Add appends a value to name: to the key that matches it, else under
// ResponseKey(name).
func (h ResponseHeader) Add(name, value string) {
	k, ok := h.key(name)
	if !ok {
		k = ResponseKey(name)
	}
	h[k] = append(h[k], value)
}

// Del removes every key that matches name.
func (h ResponseHeader) Del(name string) {
	delete(h, name)
	for k := range h {
		if len(k) == len(name) && strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
