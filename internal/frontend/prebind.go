package frontend

import (
	"net"
	"sync"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// Prebound holds TCP listening sockets bound before the Server that serves
// them exists (Prebind), so that the ports accept connections while
// Gatehouse still opens its apps: a client (or a launcher waiting for the
// port) that connects meanwhile waits in the kernel's backlog until Run
// accepts it. Its methods are safe for concurrent use; a nil *Prebound
// holds nothing.
type Prebound struct {
	mu  sync.Mutex // protects lns
	lns map[string]net.Listener
}

// Prebind binds the TCP socket of every listener of cfg, as Run would. A
// listener that cannot be bound is left out: Run binds it again and
// reports the error as it does without Prebind. Hand the result to New
// with WithPrebound, and Close it once Run has returned (or when New
// failed) to close the sockets no Server took.
func Prebind(cfg *siteconfig.Config) *Prebound {
	p := &Prebound{lns: map[string]net.Listener{}}
	for key, b := range listenerBindings(cfg) {
		if ln, err := listen(b.ListenAddr()); err == nil {
			p.lns[key] = ln
		}
	}
	return p
}

// take returns the socket bound for listener key and hands it over to the
// caller, or nil.
func (p *Prebound) take(key string) net.Listener {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ln := p.lns[key]
	delete(p.lns, key)
	return ln
}

// Close closes the sockets no Server took.
func (p *Prebound) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, ln := range p.lns {
		_ = ln.Close()
		delete(p.lns, key)
	}
}

// WithPrebound has Run take its listeners' sockets from p where p holds
// one, before it binds any itself.
func WithPrebound(p *Prebound) Option { return func(s *Server) { s.prebound = p } }
