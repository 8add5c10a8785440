package frontend

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// idlePoller is the epoll instance of a leanSet's parked connections
// (idle keep-alive connections that hold no goroutine). A parked
// connection's socket is armed for one report (EPOLLIN, EPOLLRDHUP,
// EPOLLONESHOT) carrying a token that names its parking. One goroutine
// (run) waits for the instance itself to be readable: an epoll descriptor
// is pollable, so the wait goes through Go's own poller (no thread is
// blocked in epoll_wait), and a non-blocking epoll_wait then collects the
// ready sockets. Closing the instance ends that wait.
//
// The instance is level-triggered: arming a socket that already has
// unread bytes (a request that came between the response's write and the
// arming) reports it at once, so no read is needed before parking.
type idlePoller struct {
	fd int             // the epoll descriptor, for epoll_ctl
	f  *os.File        // fd in Go's poller; closing it ends run
	rc syscall.RawConn // f's descriptor, for run's wait
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
	return &idlePoller{fd: fd, f: f, rc: rc}, nil
}

// arm registers the socket sock (add: the first time) or re-arms it for
// one readiness report with token. Readable data, the peer's close
// (EPOLLRDHUP) and an error or hang-up (always reported) each count.
func (p *idlePoller) arm(sock int, token uint64, add bool) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(token)),
		Pad:    int32(uint32(token >> 32)),
	}
	op := unix.EPOLL_CTL_MOD
	if add {
		op = unix.EPOLL_CTL_ADD
	}
	err := epollCtl(p.fd, op, sock, &ev)
	switch {
	case err == unix.EEXIST && add:
		err = epollCtl(p.fd, unix.EPOLL_CTL_MOD, sock, &ev)
	case err == unix.ENOENT && !add:
		err = epollCtl(p.fd, unix.EPOLL_CTL_ADD, sock, &ev)
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

// eventToken is the token an event carries (see arm).
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

// close ends run and closes the instance; the sockets armed in it are not
// affected. It waits for run's wait to return: never call it while
// holding a lock that ready takes.
func (p *idlePoller) close() { _ = p.f.Close() }
