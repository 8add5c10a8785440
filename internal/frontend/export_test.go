package frontend

import "net"

// H3Addr returns the UDP address HTTP/3 is served on for a binding (tests only).
func (s *Server) H3Addr(binding string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.cfg.Sites {
		for _, b := range s.cfg.Sites[i].Bindings {
			if l := s.listeners[b.ListenerKey()]; b.Name == binding && l != nil && l.udp != nil {
				return l.udp.LocalAddr()
			}
		}
	}
	return nil
}

// SetLeanHTTP1 switches the lean HTTP/1.1 loop for listeners started
// afterwards (benchmarks only: not safe beside running servers).
func SetLeanHTTP1(on bool) { leanHTTP1 = on }
