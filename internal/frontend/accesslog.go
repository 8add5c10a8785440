package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// logEntry is one finished request.
type logEntry struct {
	start     time.Time
	local     string     // ip:port the request arrived on
	remote    string     // host:port as in http.Request.RemoteAddr
	client    netip.Addr // the client: the peer, or whom a trusted proxy names
	user      string     // cs-username
	method    string
	path      string // decoded path (cs-uri-stem)
	query     string // raw query
	host      string
	proto     string
	site      string
	userAgent string
	referer   string
	cookie    string
	status    int
	substatus int
	sent      int64
	received  int64
	taken     time.Duration
	pid       int // the app process, 0 if none
}

// accessLog appends lines to one file. Safe for concurrent use; writes after
// close are dropped. Each line is one write(2), so lines never interleave.
type accessLog struct {
	path     string
	json     bool
	fields   []siteconfig.W3CField // the W3C columns, in IIS's order
	server   string                // s-computername: this machine's host name
	software string                // #Software
	log      *slog.Logger

	mu  sync.Mutex // protects f and buf
	f   *os.File   // nil once closed
	buf []byte
}

// openAccessLog opens (appends to) the log at path in format ("w3c" or
// "json"); fields chooses the W3C columns as IIS's logExtFileFlags
// ("" = siteconfig.DefaultW3CFlags).
func openAccessLog(path, format, fields, software string, log *slog.Logger) (*accessLog, error) {
	cols, err := siteconfig.SelectW3CFields(fields)
	if err != nil {
		return nil, fmt.Errorf("access log fields: %w", err)
	}
	l := &accessLog{path: path, json: format == "json", fields: cols, software: software, log: log}
	l.server, _ = os.Hostname() // "" is written as "-"
	if l.f, err = l.openFile(); err != nil {
		return nil, err
	}
	return l, nil
}

// openFile opens (creates) the file at l.path for appending and, for a W3C
// log, writes the directives.
func (l *accessLog) openFile() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("create access log folder: %w", err)
	}
	// 0640 before the umask: the owner and the file's group read it (the
	// group is Gatehouse's, or the folder's when it has the setgid bit),
	// others do not, as request lines can carry user names and query strings.
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	if !l.json {
		// IIS writes the directives when it starts a file and again after a
		// restart; readers take the latest #Fields.
		names := make([]string, len(l.fields))
		for i, c := range l.fields {
			names[i] = c.Name
		}
		hdr := fmt.Sprintf("#Software: %s\r\n#Version: 1.0\r\n#Date: %s\r\n#Fields: %s\r\n",
			l.software, time.Now().UTC().Format("2006-01-02 15:04:05"), strings.Join(names, " "))
		if _, err := f.WriteString(hdr); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write access log header: %w", err)
		}
	}
	return f, nil
}

// reopen opens the file at l.path anew and closes the old one: after
// logrotate moved it away, lines go to a new file of that name. A log
// already closed stays closed.
func (l *accessLog) reopen() error {
	f, err := l.openFile()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	if old != nil {
		l.f = f
	}
	l.mu.Unlock()
	if old == nil {
		return f.Close()
	}
	return old.Close()
}

// ReopenLogs reopens every access log (see accessLog.reopen), for
// logrotate; it returns their errors joined.
func (s *Server) ReopenLogs() error {
	s.mu.Lock()
	logs := make([]*accessLog, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.reopen(); err != nil {
			errs = append(errs, fmt.Errorf("reopen %s: %w", l.path, err))
		}
	}
	if len(errs) == 0 {
		s.log.Info("access logs reopened", "logs", len(logs))
	}
	return errors.Join(errs...)
}

// close closes the file; safe to call more than once.
func (l *accessLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// RequestDone writes the line of a finished request. A failed write is
// logged and the request is not affected.
func (l *accessLog) RequestDone(d *pipeline.Done) {
	r := d.Request
	path, query := r.Original() // as IIS logs a rewritten request
	e := logEntry{
		start: d.Start, local: r.LocalAddr, remote: r.RemoteAddr, client: r.ClientIP, method: r.Method, path: path,
		query: query, host: r.Host, proto: r.Proto, site: r.Site, status: d.Status, substatus: d.Substatus,
		sent: d.BytesOut, received: d.BytesIn, taken: d.Duration, pid: d.PID,
	}
	if p, err := url.PathUnescape(path); err == nil {
		e.path = p
	}
	if r.Header != nil {
		e.userAgent, e.referer = r.Header.Get("User-Agent"), r.Header.Get("Referer")
		e.cookie = r.Header.Get("Cookie")
	}
	if r.Identity != nil {
		e.user = r.Identity.Name
	}
	if err := l.write(&e); err != nil {
		l.log.Warn("write access log", "site", r.Site, "path", l.path, "err", err)
	}
}

func (l *accessLog) write(e *logEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	if l.json {
		l.buf = appendJSON(l.buf[:0], e)
	} else {
		l.buf = l.appendW3C(l.buf[:0], e)
	}
	_, err := l.f.Write(l.buf)
	return err
}

// appendW3C appends e's line: l.fields, each as IIS writes it, separated
// by spaces.
func (l *accessLog) appendW3C(b []byte, e *logEntry) []byte {
	for i, f := range l.fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = l.appendW3CField(b, f.Name, e)
	}
	return append(b, '\r', '\n')
}

// appendW3CField appends the value of the field called name (a
// siteconfig.W3CFields name).
func (l *accessLog) appendW3CField(b []byte, name string, e *logEntry) []byte {
	switch name {
	case "date":
		return e.start.UTC().AppendFormat(b, "2006-01-02")
	case "time":
		return e.start.UTC().AppendFormat(b, "15:04:05")
	case "s-sitename":
		return appendValue(b, e.site)
	case "s-computername":
		return appendValue(b, l.server)
	case "s-ip":
		sip, _ := splitAddr(e.local)
		return appendValue(b, sip)
	case "cs-method":
		return appendValue(b, e.method)
	case "cs-uri-stem":
		return appendValue(b, e.path)
	case "cs-uri-query":
		return appendValue(b, e.query)
	case "s-port":
		_, sport := splitAddr(e.local)
		return appendValue(b, sport)
	case "cs-username":
		return appendValue(b, e.user)
	case "c-ip":
		return appendValue(b, e.clientIP())
	case "cs-version":
		return appendValue(b, e.proto)
	case "cs(User-Agent)":
		return appendValue(b, e.userAgent)
	case "cs(Cookie)":
		return appendValue(b, e.cookie)
	case "cs(Referer)":
		return appendValue(b, e.referer)
	case "cs-host":
		return appendValue(b, e.host)
	case "sc-status":
		return strconv.AppendInt(b, int64(e.status), 10)
	case "sc-substatus":
		return strconv.AppendInt(b, int64(e.substatus), 10)
	case "sc-win32-status":
		return append(b, '0')
	case "sc-bytes":
		return strconv.AppendInt(b, e.sent, 10)
	case "cs-bytes":
		return strconv.AppendInt(b, e.received, 10)
	case "time-taken":
		return strconv.AppendInt(b, e.taken.Milliseconds(), 10)
	}
	return append(b, '-')
}

// appendValue appends v as IIS writes it: "-" when empty, spaces (and
// any other control or blank byte) as '+'.
func appendValue(b []byte, v string) []byte {
	if v == "" {
		return append(b, '-')
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c == 0x7f {
			c = '+'
		}
		b = append(b, c)
	}
	return b
}

func splitAddr(a string) (ip, port string) {
	if a == "" {
		return "", ""
	}
	ip, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, ""
	}
	return ip, port
}

// JSONEntry is one line of a JSON access log.
type JSONEntry struct {
	Time      time.Time `json:"time"`
	ServerIP  string    `json:"s_ip"`
	Port      string    `json:"s_port"`
	Method    string    `json:"method"`
	Path      string    `json:"uri_stem"`
	Query     string    `json:"uri_query,omitempty"`
	Host      string    `json:"host"`
	Proto     string    `json:"proto"`
	ClientIP  string    `json:"c_ip"`
	User      string    `json:"username,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Referer   string    `json:"referer,omitempty"`
	Status    int       `json:"status"`
	Substatus int       `json:"substatus"`
	BytesSent int64     `json:"bytes_sent"`
	BytesRecv int64     `json:"bytes_received"`
	TimeTaken int64     `json:"time_taken_ms"`
	// PID is the app process the request went to (also when it failed
	// there, 502.3); absent when no process took it.
	PID int `json:"pid,omitempty"`
}

func appendJSON(b []byte, e *logEntry) []byte {
	sip, sport := splitAddr(e.local)
	cip := e.clientIP()
	out, err := json.Marshal(JSONEntry{
		Time: e.start.UTC(), ServerIP: sip, Port: sport, Method: e.method, Path: e.path,
		Query: e.query, Host: e.host, Proto: e.proto, ClientIP: cip, User: e.user, UserAgent: e.userAgent,
		Referer: e.referer, Status: e.status, Substatus: e.substatus, BytesSent: e.sent,
		BytesRecv: e.received, TimeTaken: e.taken.Milliseconds(), PID: e.pid,
	})
	if err != nil { // cannot happen: only strings, ints and a time
		return b
	}
	b = append(b, out...)
	return append(b, '\n')
}

// clientIP is c-ip: the client's address (behind a trusted proxy, the one
// its X-Forwarded-For names), else the peer's.
func (e *logEntry) clientIP() string {
	if e.client.IsValid() {
		return e.client.String()
	}
	cip, _, _ := net.SplitHostPort(e.remote)
	return cip
}
