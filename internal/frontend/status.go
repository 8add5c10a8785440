package frontend

import (
	"strings"
	"time"
)

// BindingStatus describes one configured binding and the socket it is
// served on.
type BindingStatus struct {
	Site   string
	Name   string
	Scheme string
	// Host is the host name the binding answers, "" for any.
	Host string
	// Addr is the bound address ("0.0.0.0:443"), "" before Run bound it.
	Addr string
}

// Bindings returns every binding of the configuration in force, in
// configuration order.
func (s *Server) Bindings() []BindingStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []BindingStatus
	for i := range s.cfg.Sites {
		site := &s.cfg.Sites[i]
		for _, b := range site.Bindings {
			bs := BindingStatus{Site: site.Name, Name: b.Name, Scheme: b.Scheme, Host: b.Host}
			if l := s.listeners[b.ListenerKey()]; l != nil {
				bs.Addr = l.raw.Addr().String()
			}
			out = append(out, bs)
		}
	}
	return out
}

// Listening returns a channel that is closed once Run has bound every
// listener and serves. It stays open if Run fails to bind.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Serving reports whether Run serves: listeners bound and shutdown not
// begun.
func (s *Server) Serving() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateRunning && len(s.listeners) > 0
}

// CertificateStatus is one certificate in use.
type CertificateStatus struct {
	// Listener is the listener key ("https://:443"), Host the binding's
	// host name ("" for the default).
	Listener string
	Host     string
	Subject  string
	NotAfter time.Time
}

// Certificates returns the leaf certificate of every https binding as
// loaded (after the latest reload or file change).
func (s *Server) Certificates() []CertificateStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CertificateStatus
	for i := range s.cfg.Sites {
		for _, b := range s.cfg.Sites[i].Bindings {
			t := s.sni[b.ListenerKey()]
			if b.Scheme != "https" || t == nil {
				continue
			}
			tc, ok := t.exact[strings.ToLower(b.Host)], true
			if b.Host == "" {
				tc, ok = t.def, t.hasDf
			} else if tc == nil {
				ok = false
				for _, w := range t.wild {
					if "*"+w.suffix == strings.ToLower(b.Host) {
						tc, ok = w.val, true
					}
				}
			}
			if !ok || tc == nil || len(tc.Certificates) == 0 || tc.Certificates[0].Leaf == nil {
				continue
			}
			leaf := tc.Certificates[0].Leaf
			out = append(out, CertificateStatus{Listener: b.ListenerKey(), Host: b.Host,
				Subject: leaf.Subject.CommonName, NotAfter: leaf.NotAfter})
		}
	}
	return out
}

// OnTLSHandshake sets a function told about every TLS handshake on the
// lean path (which takes every TLS connection first): the listener key and
// nil or the handshake's error. Set it before Run; nil means none.
func (s *Server) OnTLSHandshake(f func(listener string, err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tlsObserver = f
}
