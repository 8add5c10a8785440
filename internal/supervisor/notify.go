package supervisor

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// notifier is the sd_notify socket of one process: a unixgram socket in a
// private temporary folder, named in NOTIFY_SOCKET. ready is closed when a
// datagram holds the line READY=1. The socket lives until the process exits,
// so later STATUS= or WATCHDOG= messages do not fail.
type notifier struct {
	dir   string
	path  string
	conn  *net.UnixConn
	ready chan struct{}
	once  sync.Once
}

func newNotifier() (*notifier, error) {
	dir, err := os.MkdirTemp("", "gatehouse-notify-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &notifier{dir: dir, path: path, conn: conn, ready: make(chan struct{})}, nil
}

// run reads datagrams until the socket is closed.
func (n *notifier) run() {
	buf := make([]byte, 4096)
	for {
		k, _, err := n.conn.ReadFromUnix(buf)
		if err != nil {
			return
		}
		for line := range bytes.SplitSeq(buf[:k], []byte("\n")) {
			if string(bytes.TrimSpace(line)) == "READY=1" {
				n.once.Do(func() { close(n.ready) })
			}
		}
	}
}

// close closes the socket (ending run) and removes its folder. Safe to call
// more than once.
func (n *notifier) close() {
	n.conn.Close()
	os.RemoveAll(n.dir)
}
