package frontend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// Inherit hands the server listening sockets it did not open: systemd
// socket activation (LISTEN_FDS), or the sockets of a Gatehouse that is
// being upgraded. A binding uses an inherited socket instead of binding
// its address when the socket's name is the binding's listener key
// ("http://127.0.0.1:8080", as an upgrade names them) or, failing that,
// when the socket listens on the binding's address: the same port and the
// same IP, or both the unspecified address (systemd's ListenStream=80 is
// [::]:80, which a binding with no address means). Call it before Run; the
// server owns the sockets from then on and closes the unused ones when it
// stops.
func (s *Server) Inherit(name string, ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inherited = append(s.inherited, inheritedSocket{name: name, ln: ln})
}

// inheritedSocket is one socket handed over by Inherit, until a binding
// takes it.
type inheritedSocket struct {
	name string
	ln   net.Listener
}

// takeInherited returns the inherited socket for b and removes it from the
// pool, or nil. Called with s.mu held.
func (s *Server) takeInherited(b *siteconfig.Binding) net.Listener {
	key := b.ListenerKey()
	idx := -1
	for i, in := range s.inherited {
		if in.name == key {
			idx = i
			break
		}
	}
	if idx < 0 {
		for i, in := range s.inherited {
			if sameListenAddr(b, in.ln.Addr()) {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return nil
	}
	ln := s.inherited[idx].ln
	s.inherited = append(s.inherited[:idx], s.inherited[idx+1:]...)
	return ln
}

// sameListenAddr reports whether a socket bound to addr serves binding b.
// A binding with port 0 matches no inherited socket by address.
func sameListenAddr(b *siteconfig.Binding, addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || b.Port == 0 || ta.Port != b.Port {
		return false
	}
	got, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	got = got.Unmap()
	host := b.Address
	if host == "" || host == "*" {
		return got.IsUnspecified()
	}
	want, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return want.Unmap() == got || (want.IsUnspecified() && got.IsUnspecified())
}

// closeInherited closes the inherited sockets no binding took. Called with
// s.mu held.
func (s *Server) closeInherited() {
	for _, in := range s.inherited {
		_ = in.ln.Close()
	}
	s.inherited = nil
}

// listenTCP binds b's address, or takes its inherited socket or the one
// Prebind bound for it. Its errors say what to do about the common causes.
func (s *Server) listenTCP(b *siteconfig.Binding) (net.Listener, error) {
	if ln := s.takeInherited(b); ln != nil {
		s.log.Info("using an inherited socket", "listener", b.ListenerKey(), "addr", ln.Addr().String())
		return ln, nil
	}
	if ln := s.prebound.take(b.ListenerKey()); ln != nil {
		return ln, nil
	}
	ln, err := listen(b.ListenAddr())
	if err != nil {
		return nil, fmt.Errorf("listen %s (binding %s): %w%s", b.ListenerKey(), b.Name, err, bindHint(err, b.Port))
	}
	return ln, nil
}

// bindHint says what to do about a bind error, or "".
func bindHint(err error, port int) string {
	switch {
	case errors.Is(err, syscall.EACCES) && port > 0 && port < 1024:
		return "; ports below 1024 need privileges: give the binary the capability " +
			"(setcap cap_net_bind_service=+ep $(command -v gatehouse)), run it under systemd with " +
			"AmbientCapabilities=CAP_NET_BIND_SERVICE, or let systemd bind the port (socket activation, " +
			"packaging/gatehouse.socket)"
	case errors.Is(err, syscall.EADDRINUSE):
		return "; another program listens there (see: ss -ltnp 'sport = :" + strconv.Itoa(port) + "')"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "; no interface of this machine has that address"
	}
	return ""
}

// ListenerFiles returns a duplicate of every bound TCP listening socket,
// named by its listener key, for handing to a new Gatehouse (see Inherit).
// The caller closes the files; the server keeps serving its own sockets.
// HTTP/3's UDP sockets are not included: the new Gatehouse binds its own.
func (s *Server) ListenerFiles() ([]*os.File, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []*os.File
	var names []string
	for key, l := range s.listeners {
		fl, ok := l.raw.(interface{ File() (*os.File, error) })
		if !ok {
			continue
		}
		f, err := fl.File()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("duplicate listener %s: %w", key, err)
		}
		files = append(files, f)
		names = append(names, key)
	}
	return files, names, nil
}
