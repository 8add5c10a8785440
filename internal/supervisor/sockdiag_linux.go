//go:build linux

package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sizes and offsets of the kernel's inet_diag structures
// (include/uapi/linux/inet_diag.h).
const (
	diagReqLen    = 56 // struct inet_diag_req_v2
	diagMsgLen    = 72 // struct inet_diag_msg
	diagSportOff  = 4  // inet_diag_msg.id.idiag_sport, big-endian
	diagInodeOff  = 68 // inet_diag_msg.idiag_inode
	diagStateOff  = 1  // inet_diag_msg.idiag_state
	tcpListen     = 10 // TCP_LISTEN in the kernel's state numbering
	diagRecvBytes = 32 << 10

	// Offsets in struct inet_diag_req_v2 of its inet_diag_sockid.
	reqSportOff  = 8  // idiag_sport, big-endian
	reqSrcOff    = 12 // idiag_src
	reqDstOff    = 28 // idiag_dst
	reqCookieOff = 48 // idiag_cookie
)

// loopbackListener asks the kernel over NETLINK_SOCK_DIAG which socket a
// connection to 127.0.0.1:port reaches now (the lookup an incoming SYN
// gets, which also finds an IPv6 socket that accepts IPv4) and returns its
// inode as "socket:[N]", or "" if none listens there. It is one lookup in
// the kernel's hash of listeners, where a dump (diagListeners) walks the
// whole hash: ~50 µs per family on this host, against a few µs.
func loopbackListener(port int) (string, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return "", fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(time.Second)) // the kernel answers at once
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return "", fmt.Errorf("set sock_diag timeout: %w", err)
	}
	var req [unix.SizeofNlMsghdr + diagReqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1)
	body := req[unix.SizeofNlMsghdr:]
	body[0] = unix.AF_INET
	body[1] = unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<tcpListen)
	// The socket's side is 127.0.0.1:port; the peer's, 127.0.0.1:0, which
	// no connection has, so the lookup falls through to the listeners.
	binary.BigEndian.PutUint16(body[reqSportOff:], uint16(port))
	copy(body[reqSrcOff:], []byte{127, 0, 0, 1})
	copy(body[reqDstOff:], []byte{127, 0, 0, 1})
	ne.PutUint64(body[reqCookieOff:], ^uint64(0)) // INET_DIAG_NOCOOKIE
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "", fmt.Errorf("send sock_diag request: %w", err)
	}
	var buf [1024]byte
	n, _, err := unix.Recvfrom(fd, buf[:], 0)
	if err != nil {
		return "", fmt.Errorf("read sock_diag answer: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return "", fmt.Errorf("parse sock_diag answer: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if errno := syscall.Errno(-int32(ne.Uint32(m.Data))); errno == unix.ENOENT {
					return "", nil
				} else if errno != 0 {
					return "", fmt.Errorf("sock_diag: %w", errno)
				}
			}
			return "", errors.New("sock_diag: error answer")
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(m.Data) < diagMsgLen || m.Data[diagStateOff] != tcpListen {
				return "", nil
			}
			return "socket:[" + strconv.FormatUint(uint64(ne.Uint32(m.Data[diagInodeOff:])), 10) + "]", nil
		}
	}
	return "", errors.New("sock_diag: no answer")
}

// diagListeners asks the kernel over NETLINK_SOCK_DIAG for the TCP sockets
// (IPv4 and IPv6) listening on port and returns their inodes as
// "socket:[N]", the form /proc/PID/fd links take.
func diagListeners(port int) (map[string]bool, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	// The kernel answers at once; the timeout only bounds a broken kernel.
	tv := unix.NsecToTimeval(int64(time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set sock_diag timeout: %w", err)
	}
	inodes := map[string]bool{}
	for seq, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := diagDump(fd, uint32(seq+1), family, port, inodes); err != nil {
			return nil, err
		}
	}
	return inodes, nil
}

// diagDump sends one dump request for the listening TCP sockets of family
// and adds those on port to inodes.
func diagDump(fd int, seq uint32, family uint8, port int, inodes map[string]bool) error {
	req := make([]byte, unix.SizeofNlMsghdr+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	body := req[unix.SizeofNlMsghdr:]
	body[0] = family
	body[1] = unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<tcpListen) // idiag_states
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send sock_diag request: %w", err)
	}
	buf := make([]byte, diagRecvBytes)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("read sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parse sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return errors.New("sock_diag: error answer")
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(m.Data) < diagMsgLen {
					continue
				}
				if int(binary.BigEndian.Uint16(m.Data[diagSportOff:])) == port {
					inodes["socket:["+strconv.FormatUint(uint64(ne.Uint32(m.Data[diagInodeOff:])), 10)+"]"] = true
				}
			}
		}
	}
}
