package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse/gatehouse/integration"
)

// activation is what the process saw of socket activation at start.
var activation string

// raw is what arrived before the integration middleware changed anything.
type raw struct {
	header     http.Header
	remoteAddr string
	requestURI string
}

type rawKey struct{}

// recordRaw saves a copy of the request headers and peer address in the
// context before next (the integration middleware) rewrites them.
func recordRaw(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &raw{header: r.Header.Clone(), remoteAddr: r.RemoteAddr, requestURI: r.RequestURI}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), rawKey{}, rec)))
	})
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.hello)
	mux.HandleFunc("/env", handleEnv)
	mux.HandleFunc("/headers", handleHeaders)
	mux.HandleFunc("/{dir}/headers", handleHeaders) // the same one level down (per-path settings)
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, a.pid) })
	mux.HandleFunc("/childpid", a.childpid)
	mux.HandleFunc("/crash", handleCrash)
	mux.HandleFunc("/sleep", handleSleep)
	mux.HandleFunc("/stream", handleStream)
	mux.HandleFunc("/echo", handleEcho)
	mux.HandleFunc("/{dir}/echo", handleEcho) // the same below an unstripped path base
	mux.HandleFunc("/ws", a.handleWebSocket)
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/big", handleBig)
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusFound) })
	mux.HandleFunc("/discard", handleDiscard)
	mux.HandleFunc("/orphan", handleOrphan)
	mux.HandleFunc("/set-headers", handleSetHeaders)
	mux.HandleFunc("/activation", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, activation) })
	if d := a.opts.static; d != "" {
		// A static-file host: the folder's files under /<folder>/, before
		// any other route.
		prefix := "/" + filepath.Base(d)
		files := http.StripPrefix(prefix, http.FileServer(http.Dir(d)))
		return a.common(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, prefix+"/") {
				files.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}))
	}
	return a.common(mux)
}

// common sets X-Pid on every response, so tests see which process answered,
// and Server: Kestrel, as an ASP.NET Core app behind ANCM sends it; and, while /healthz still says "not ready" (-ready-after), fails every
// other request with 500: a proxy that sends requests before its readiness
// probe passed is caught.
func (a *app) common(next http.Handler) http.Handler {
	pid := strconv.Itoa(a.pid)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pid", pid)
		w.Header().Set("Server", "Kestrel")
		if r.URL.Path != "/healthz" && time.Now().Before(a.readyAt) {
			http.Error(w, "request before ready", http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handleSetHeaders answers 200 with the response fields its query asks
// for, each h=Name:value, the name sent as written (not canonicalized).
func handleSetHeaders(w http.ResponseWriter, r *http.Request) {
	for _, f := range r.URL.Query()["h"] {
		name, value, _ := strings.Cut(f, ":")
		w.Header()[name] = append(w.Header()[name], value)
	}
	_, _ = io.WriteString(w, "headers set\n")
}

func (a *app) hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "Hello from testapp pid=%d\n", a.pid)
}

func (a *app) childpid(w http.ResponseWriter, r *http.Request) {
	if a.childPID == 0 {
		http.Error(w, "no child (use -spawn-child)", http.StatusNotFound)
		return
	}
	fmt.Fprintln(w, a.childPID)
}

func handleEnv(w http.ResponseWriter, r *http.Request) {
	v, ok := os.LookupEnv(r.URL.Query().Get("name"))
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, v)
}

// headersReport is the JSON body of /headers.
type headersReport struct {
	Headers            http.Header `json:"headers"`
	RawHeaders         http.Header `json:"raw_headers"`
	RawXForwardedFor   []string    `json:"raw_x_forwarded_for"`
	RawXForwardedProto []string    `json:"raw_x_forwarded_proto"`
	RawRemoteAddr      string      `json:"raw_remote_addr"`
	RawRequestURI      string      `json:"raw_request_uri"`
	RemoteAddr         string      `json:"remote_addr"`
	Scheme             string      `json:"scheme"`
	PathBase           string      `json:"path_base"`
	Path               string      `json:"path"`
	Host               string      `json:"host"`
	Proto              string      `json:"proto"`
	ClientCertSubject  string      `json:"client_cert_subject,omitempty"`
	// User is integration.UserFrom: who Gatehouse authenticated.
	User *integration.User `json:"user,omitempty"`
}

func handleHeaders(w http.ResponseWriter, r *http.Request) {
	rep := headersReport{
		Headers:    r.Header,
		RemoteAddr: r.RemoteAddr,
		Scheme:     integration.Scheme(r),
		PathBase:   integration.PathBase(r),
		Path:       r.URL.Path,
		Host:       r.Host,
		Proto:      r.Proto,
	}
	if rec, ok := r.Context().Value(rawKey{}).(*raw); ok {
		rep.RawHeaders = rec.header
		rep.RawXForwardedFor = rec.header.Values("X-Forwarded-For")
		rep.RawXForwardedProto = rec.header.Values("X-Forwarded-Proto")
		rep.RawRemoteAddr = rec.remoteAddr
		rep.RawRequestURI = rec.requestURI
	}
	if c := integration.ClientCertificate(r); c != nil {
		rep.ClientCertSubject = c.Subject.String()
	}
	rep.User = integration.UserFrom(r)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// handleCrash simulates a crash: the process exits at once, and the client
// sees the connection close without a response.
func handleCrash(w http.ResponseWriter, r *http.Request) {
	os.Exit(3)
}

func handleSleep(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil {
		http.Error(w, "bad d: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Printf("sleeping %s\n", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintf(w, "slept %s\n", d)
	case <-r.Context().Done():
	}
}

func handleStream(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 {
		n = 5
	}
	var delay time.Duration
	if s := r.URL.Query().Get("delay"); s != "" {
		if delay, err = time.ParseDuration(s); err != nil {
			http.Error(w, "bad delay: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Trailer", "X-Trailer")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "line %d\n", i)
		if err := rc.Flush(); err != nil {
			return
		}
		if delay > 0 && i < n {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	w.Header().Set("X-Trailer", "done")
}

// handleEcho copies the body back as it arrives, flushing after each read.
func handleEcho(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1: read the body while writing the response
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (a *app) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	if isWSConnect(r) {
		a.handleWebSocketStream(w, r)
		return
	}
	a.websockets.Add(1)
	defer a.websockets.Done()
	// Tests connect from anywhere; the origin check is not what they test.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has written the error response
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20) // tests echo messages larger than the 32 KB default
	// On shutdown, close with 1001 Going Away; the Read below then ends.
	defer context.AfterFunc(a.closing, func() {
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
	})()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	if time.Now().Before(a.readyAt) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// handleDiscard reads the request body to its end and answers how many
// bytes it had: an upload that costs the app as little as possible.
func handleDiscard(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d bytes\n", n)
}

func handleBig(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "bad n", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	ct := r.URL.Query().Get("type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	var chunk [26 * 1260]byte // 32 760 bytes, a whole number of alphabets
	for i := range chunk {
		chunk[i] = 'a' + byte(i%26)
	}
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return
		}
		n -= k
	}
}
