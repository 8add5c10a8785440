package frontend

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idlePoller is the epoll instance of a leanSet's parked connections
// (idle keep-alive connections that hold no goroutine). A connection's
// socket is registered once, at its first park, edge-triggered (EPOLLIN,
// EPOLLRDHUP, EPOLLET) with a token that names the connection, and stays
// registered until it closes; parking it again is a change of state in
// the set, not a system call. One goroutine (run) waits for the instance
// itself to be readable: an epoll descriptor is pollable, so the wait goes
// through Go's own poller (no thread is blocked in epoll_wait), and a
// non-blocking epoll_wait then collects the ready sockets. Closing the
// instance ends that wait.
//
// Edge-triggered, an event reports that bytes (or the peer's close) came,
// not that they are still unread, and bytes a read left behind raise no
// new one: the set remembers an event for a connection that is serving, a
// woken connection tries a read before it waits, and so does one whose
// last read filled its buffer (see leanConn.await). Registering a socket
// that already holds unread bytes reports it at once, so the first park
// misses nothing either.
type idlePoller struct {
	f  *os.File        // the epoll descriptor in Go's poller; closing it ends run
	rc syscall.RawConn // f's descriptor, for run's wait and for epoll_ctl
}

// newIdlePoller makes an epoll instance.
func newIdlePoller() (*idlePoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so os.NewFile puts it in Go's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("epoll descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "idle-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	return &idlePoller{f: f, rc: rc}, nil
}

// register adds the socket sock to the instance, edge-triggered, with
// token: readable data, the peer's close (EPOLLRDHUP) and an error or
// hang-up (always reported) each raise an event. The socket is used
// through its RawConn, so a socket closed meanwhile is never confused with
// a descriptor that reuses its number.
func (p *idlePoller) register(sock syscall.RawConn, token uint64) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(uint32(token)),
		Pad:    int32(uint32(token >> 32)),
	}
	return p.ctl(sock, unix.EPOLL_CTL_ADD, &ev)
}

// unregister takes an open socket out of the instance (a closed one left
// it with its close; then this does nothing).
func (p *idlePoller) unregister(sock syscall.RawConn) error {
	return p.ctl(sock, unix.EPOLL_CTL_DEL, &unix.EpollEvent{})
}

// ctl runs epoll_ctl while both descriptors are held open.
func (p *idlePoller) ctl(sock syscall.RawConn, op int, ev *unix.EpollEvent) error {
	var err error
	perr := p.rc.Control(func(epfd uintptr) {
		serr := sock.Control(func(fd uintptr) { err = epollCtl(int(epfd), op, int(fd), ev) })
		if err == nil {
			err = serr // the socket is closed
		}
	})
	if err == nil {
		err = perr // the instance is closed
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// epollCtl and epollWait are epoll_ctl and a non-blocking epoll_wait as
// raw system calls (no entersyscall/exitsyscall, like h1.Socket's reads
// and writes): neither blocks, so holding the P is safe, and the
// scheduler never hands it to another thread for them.
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func epollWait(epfd int, evs []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// eventToken is the token an event carries (see register).
func eventToken(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// run passes the tokens of ready sockets to ready, in batches, until the
// instance is closed; it returns the error that ended the wait (the
// close's, normally).
func (p *idlePoller) run(ready func(tokens []uint64)) error {
	var evs [128]unix.EpollEvent
	var toks [len(evs)]uint64
	var werr error
	err := p.rc.Read(func(fd uintptr) bool {
		for {
			n, err := epollWait(int(fd), evs[:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = fmt.Errorf("epoll_wait: %w", err)
				return true
			}
			for i := range n {
				toks[i] = eventToken(&evs[i])
			}
			if n > 0 {
				ready(toks[:n])
			}
			if n < len(evs) {
				// Drained: wait for Go's poller to see the instance
				// readable again (its readiness was reset before this
				// call, so an event since is not missed).
				return false
			}
		}
	})
	if err != nil {
		return err
	}
	return werr
}

// close ends run and closes the instance; the sockets registered in it
// are not affected. It waits for run's wait to return: never call it while
// holding a lock that ready takes.
func (p *idlePoller) close() { _ = p.f.Close() }

// move takes the registration of the descriptor old (still open) out of
// the instance and registers sock with the same token: a socket that
// moved to a new descriptor (a rawConn's conversion), whose registration
// would otherwise stay with the old one.
func (p *idlePoller) move(old int, sock syscall.RawConn, token uint64) error {
	var err error
	perr := p.rc.Control(func(epfd uintptr) {
		err = epollCtl(int(epfd), unix.EPOLL_CTL_DEL, old, &unix.EpollEvent{})
	})
	if perr != nil {
		return fmt.Errorf("epoll_ctl: %w", perr)
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return p.register(sock, token)
}
