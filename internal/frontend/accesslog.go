package frontend

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// W3CFields is the #Fields line of the W3C access log: IIS's default field
// set with sc-bytes and cs-bytes switched on, in IIS's column order.
const W3CFields = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip " +
	"cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken"

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
	userAgent string
	referer   string
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
	path string
	json bool
	log  *slog.Logger

	mu  sync.Mutex // protects f and buf
	f   *os.File   // nil once closed
	buf []byte
}

func openAccessLog(path, format, software string, log *slog.Logger) (*accessLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create access log folder: %w", err)
	}
	// 0640 before the umask: the owner and the file's group read it (the
	// group is Gatehouse's, or the folder's when it has the setgid bit),
	// others do not, as request lines can carry user names and query strings.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	l := &accessLog{path: path, json: format == "json", f: f, log: log}
	if !l.json {
		// IIS writes the directives when it starts a file and again after a
		// restart; readers take the latest #Fields.
		hdr := fmt.Sprintf("#Software: %s\r\n#Version: 1.0\r\n#Date: %s\r\n#Fields: %s\r\n",
			software, time.Now().UTC().Format("2006-01-02 15:04:05"), W3CFields)
		if _, err := f.WriteString(hdr); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write access log header: %w", err)
		}
	}
	return l, nil
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
		query: query, host: r.Host, proto: r.Proto, status: d.Status, substatus: d.Substatus,
		sent: d.BytesOut, received: d.BytesIn, taken: d.Duration, pid: d.PID,
	}
	if p, err := url.PathUnescape(path); err == nil {
		e.path = p
	}
	if r.Header != nil {
		e.userAgent, e.referer = r.Header.Get("User-Agent"), r.Header.Get("Referer")
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
		l.buf = appendW3C(l.buf[:0], e)
	}
	_, err := l.f.Write(l.buf)
	return err
}

func appendW3C(b []byte, e *logEntry) []byte {
	t := e.start.UTC()
	b = t.AppendFormat(b, "2006-01-02 15:04:05")
	sip, sport := splitAddr(e.local)
	cip := e.clientIP()
	b = appendField(b, sip)
	b = appendField(b, e.method)
	b = appendField(b, e.path)
	b = appendField(b, e.query)
	b = appendField(b, sport)
	b = appendField(b, e.user)
	b = appendField(b, cip)
	b = appendField(b, e.userAgent)
	b = appendField(b, e.referer)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.substatus), 10)
	b = append(b, " 0 "...) // sc-win32-status
	b = strconv.AppendInt(b, e.sent, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.received, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.taken.Milliseconds(), 10)
	return append(b, '\r', '\n')
}

// appendField appends ' ' and v as IIS writes it: "-" when empty, spaces
// (and any other control or blank byte) as '+'.
func appendField(b []byte, v string) []byte {
	b = append(b, ' ')
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
