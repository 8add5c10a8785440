package proxy

import (
	"net"
	"net/netip"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// FromMachine reports whether r came from the machine Gatehouse runs on,
// which is what IIS's errorMode="DetailedLocalOnly" means by "local": the
// peer's address is a loopback address (any of 127.0.0.0/8, ::1), the
// address the connection arrived on, or another address of one of the
// machine's interfaces. When a trusted proxy named the client (ClientIP
// differs from the peer), that client must be on the machine too, so a
// request relayed by a local reverse proxy for a remote client is not
// local.
//
// It is meant for the error path: it may list the machine's interface
// addresses.
func FromMachine(r *pipeline.Request) bool {
	if r == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer := ap.Addr().Unmap()
	if !isMachineAddr(r, peer) {
		return false
	}
	if r.ClientIP.IsValid() {
		if c := r.ClientIP.Unmap(); c != peer {
			return isMachineAddr(r, c)
		}
	}
	return true
}

// isMachineAddr reports whether ip is one of this machine's addresses.
func isMachineAddr(r *pipeline.Request, ip netip.Addr) bool {
	if ip.IsLoopback() {
		return true
	}
	if ap, err := netip.ParseAddrPort(r.LocalAddr); err == nil && ap.Addr().Unmap() == ip {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if m, ok := netip.AddrFromSlice(n.IP); ok && m.Unmap() == ip {
				return true
			}
		}
	}
	return false
}
