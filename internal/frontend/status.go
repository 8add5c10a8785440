package frontend

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
