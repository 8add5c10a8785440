package hostile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recorder is the app behind Gatehouse in these tests: an HTTP/1.1 server
// that keeps every byte it receives, in order, per connection, and answers
// each request it could read completely with what it saw (X-Recorder
// names the recorder, so the client can tell the app's answers from the
// front door's).
type recorder struct {
	name string
	ln   net.Listener
	srv  *http.Server

	mu        sync.Mutex
	raw       []*bytes.Buffer // one per connection, in accept order
	completed []seen          // requests read in full and answered
	aborted   []seen          // requests whose body could not be read
	busy      map[net.Conn]bool
	conns     []*net.TCPConn // every accepted connection
}

// connState tracks connections that may still be reading.
func (r *recorder) connState(c net.Conn, s http.ConnState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy == nil {
		r.busy = map[net.Conn]bool{}
	}
	switch s {
	case http.StateNew, http.StateActive:
		r.busy[c] = true
	default:
		delete(r.busy, c)
	}
}

// quiet reports whether every connection is idle or closed, with nothing
// waiting to be read in its socket.
func (r *recorder) quiet() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.busy) > 0 {
		return false
	}
	for _, c := range r.conns {
		if unread(c) > 0 {
			return false
		}
	}
	return true
}

// unread returns how many bytes wait in c's receive queue (0 once closed).
func unread(c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n
}

// seen is one request as the app read it.
type seen struct {
	Method, Target, Host, Proto string
	Header                      http.Header
	Body                        string
	Err                         string `json:",omitempty"`
}

func newRecorder(t testing.TB, name string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{name: name}
	r.ln = &recListener{Listener: ln, r: r}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, ConnState: r.connState}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.srv.Serve(r.ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			_ = r.srv.Close()
		}
		<-done
	})
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	s := seen{Method: req.Method, Target: req.RequestURI, Host: req.Host, Proto: req.Proto, Header: req.Header.Clone(), Body: string(body)}
	r.mu.Lock()
	if err != nil {
		s.Err = err.Error()
		r.aborted = append(r.aborted, s)
	} else {
		r.completed = append(r.completed, s)
	}
	r.mu.Unlock()
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		return
	}
	w.Header().Set("X-Recorder", r.name)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// reset forgets what was recorded so far.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.raw {
		b.Reset()
	}
	r.completed, r.aborted = nil, nil
}

// snapshot returns the bytes received since reset (connections in accept
// order) and the requests.
func (r *recorder) snapshot() (raw []string, completed, aborted []seen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.raw {
		if b.Len() > 0 {
			raw = append(raw, b.String())
		}
	}
	return raw, append([]seen(nil), r.completed...), append([]seen(nil), r.aborted...)
}

type recListener struct {
	net.Listener
	r *recorder
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	b := new(bytes.Buffer)
	l.r.mu.Lock()
	l.r.raw = append(l.r.raw, b)
	if tc, ok := c.(*net.TCPConn); ok {
		l.r.conns = append(l.r.conns, tc)
	}
	l.r.mu.Unlock()
	return &recConn{Conn: c, buf: b, mu: &l.r.mu}, nil
}

// recConn copies every byte read into buf.
type recConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.buf.Write(p[:n])
		c.mu.Unlock()
	}
	return n, err
}
