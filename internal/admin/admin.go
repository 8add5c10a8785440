// Package admin is Gatehouse's control endpoint: an HTTP API served on a
// Unix socket (access by file permissions, not the network) and optionally
// on a loopback TCP address, which `gatehouse status`, `recycle`, `stop`,
// `start` and `reload` talk to, and which carries the health endpoints and
// the Prometheus metrics. On the TCP address every call but the health
// endpoints and metrics needs the token of the token file beside the
// socket (see Server.Token, EnsureToken), and a request that names a
// non-loopback Host or a foreign Origin is refused with 403.
//
//	GET  /v1/status             Status as JSON
//	POST /v1/recycle?app=S/P    recycle one app (no app: every app), wait for the outcome
//	POST /v1/stop?app=S/P       stop one app and keep it down
//	POST /v1/start?app=S/P      start a stopped app, wait until it is ready
//	POST /v1/reload             re-read the configuration, wait for the outcome
//	POST /v1/upgrade            hand the sockets to a new binary, wait until it serves
//	POST /v1/scale?app=S/P&n=N  set the app's number of processes, wait until they are ready
//	POST /v1/reopen-logs        reopen the access logs (after logrotate moved them)
//	POST /v1/save               keep the operator's stops in the state file (?forget=1: remove it)
//	GET  /v1/logs?app=S/P&lines=N&follow=1
//	                            an app's last log lines as text; follow streams new ones
//	GET  /healthz               200 while the process serves (liveness)
//	GET  /readyz                200 while the front door accepts requests, 503 otherwise
//	GET  /metrics               Prometheus exposition (when Server.Metrics is set)
//
// Control calls answer 200 {"ok":true} or an error status with
// {"error":"…","kind":"…"}: 404 "not_found" for an unknown app, 422
// "config" for a rejected configuration, 500 "failed" otherwise. The
// caller waits for the outcome; the request's context bounds the wait.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Errors a Controller wraps so the API can say what kind of failure it was.
var (
	// ErrNotFound: no app of that name.
	ErrNotFound = errors.New("no such app")
	// ErrInvalidConfig: the configuration was rejected; what runs is unchanged.
	ErrInvalidConfig = errors.New("configuration rejected")
)

// Controller is what the admin endpoint controls: the running front door
// and its apps. App names are "SITE/PATH" ("default/", "shop/api"); a bare
// site name means its root app. Each method returns when the operation is
// done or ctx ends.
type Controller interface {
	// Status returns a snapshot of the listeners, apps and processes.
	Status() Status
	// Recycle replaces the processes of app ("" = every app), overlapped.
	Recycle(ctx context.Context, app string) error
	// Stop stops app and keeps it down until Start.
	Stop(ctx context.Context, app string) error
	// Start starts app and waits until it is ready.
	Start(ctx context.Context, app string) error
	// Reload re-reads the configuration. An error wrapping
	// ErrInvalidConfig means it was rejected and the old one stays.
	Reload(ctx context.Context) error
	// Ready returns nil while the front door accepts requests.
	Ready() error
	// Upgrade hands the listening sockets to a new Gatehouse binary and,
	// once it serves, has this one drain and exit.
	Upgrade(ctx context.Context) error
	// Save writes the operator's state (the apps stopped with Stop) to the
	// state file and keeps it current, so it outlives a restart of
	// Gatehouse; forget removes the file instead.
	Save(ctx context.Context, forget bool) error
	// Logs writes the last lines of app's log to w ("" for Gatehouse's
	// lines about every app); with follow it goes on writing new lines
	// until ctx ends. An unknown app is an error wrapping ErrNotFound,
	// returned before anything is written.
	Logs(ctx context.Context, app string, lines int, follow bool, w io.Writer) error
	// ReopenLogs reopens the access log files, for logrotate.
	ReopenLogs(ctx context.Context) error
	// Scale sets app's number of processes (processesPerApplication at
	// run time) and keeps it, as Stop is kept.
	Scale(ctx context.Context, app string, n int) error
}

// Server serves the admin API. Its zero value is not usable: set
// Controller. It must not be copied after first use.
type Server struct {
	// Controller carries out the calls. Required.
	Controller Controller
	// Metrics, if set, serves GET /metrics.
	Metrics http.Handler
	// Log receives errors of the HTTP server; nil means none.
	Log *slog.Logger
	// MetricsOnly serves nothing but GET /metrics, /healthz and /readyz:
	// for a metrics address that may be reachable from the network (a
	// Prometheus scraper, Kubernetes probes).
	MetricsOnly bool
	// Token, if set, is the credential every call but /healthz, /readyz
	// and /metrics must carry ("Authorization: Bearer <Token>"), and
	// requests must name a loopback host and come from no page of another
	// origin: set it for a TCP address, which any local process and any
	// browser on the machine can reach. The Unix socket needs none: its
	// file permissions decide who may connect.
	Token string
}

// Handler returns the admin API as an http.Handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.Controller.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(err.Error() + "\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	if s.MetricsOnly {
		return mux
	}
	var h http.Handler = mux
	if s.Token != "" {
		h = guard(s.Token, mux)
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Controller.Status())
	})
	control := func(f func(ctx context.Context, app string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			reply(w, f(r.Context(), r.URL.Query().Get("app")))
		}
	}
	mux.HandleFunc("POST /v1/recycle", control(s.Controller.Recycle))
	mux.HandleFunc("POST /v1/stop", control(s.Controller.Stop))
	mux.HandleFunc("POST /v1/start", control(s.Controller.Start))
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.Controller.Reload(r.Context()))
	})
	mux.HandleFunc("POST /v1/upgrade", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.Controller.Upgrade(r.Context()))
	})
	mux.HandleFunc("POST /v1/scale", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			reply(w, fmt.Errorf("scale: n %q is not a number", r.URL.Query().Get("n")))
			return
		}
		reply(w, s.Controller.Scale(r.Context(), r.URL.Query().Get("app"), n))
	})
	mux.HandleFunc("POST /v1/reopen-logs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.Controller.ReopenLogs(r.Context()))
	})
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		lines, _ := strconv.Atoi(q.Get("lines"))
		lw := &lazyText{w: w}
		err := s.Controller.Logs(r.Context(), q.Get("app"), lines, q.Get("follow") == "1", lw)
		if err != nil && !lw.started {
			reply(w, err)
		}
	})
	mux.HandleFunc("POST /v1/save", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.Controller.Save(r.Context(), r.URL.Query().Get("forget") == "1"))
	})
	return h
}

// Serve serves the admin API on ln until ctx ends, then closes ln and
// waits (at most 5 s) for control calls in progress; their contexts are
// canceled. It returns nil after ctx ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var errLog *slog.Logger
	if s.Log != nil {
		errLog = s.Log
	} else {
		errLog = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler: s.Handler(),
		// Local clients send small requests at once; a control call may run
		// long (a recycle waits for startupTimeLimit and the drain), so no
		// write timeout.
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(errLog.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }() // ends when srv is shut down below
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// lazyText sends the 200 text/plain header with the first write, so an
// error before any line can still be a JSON error reply; it flushes on
// Flush (each batch of lines of a followed log).
type lazyText struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyText) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		l.w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	return l.w.Write(p)
}

func (l *lazyText) Flush() {
	if l.started {
		_ = http.NewResponseController(l.w).Flush() // the client went away: nothing to do
	}
}

// replyBody is the JSON answer to a control call.
type replyBody struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// Kinds of failure in replies.
const (
	KindNotFound = "not_found"
	KindConfig   = "config"
	KindFailed   = "failed"
	// KindUnauthorized: a TCP address was called without the right token (401).
	KindUnauthorized = "unauthorized"
	// KindForbidden: a TCP address was called with a foreign Host or Origin (403).
	KindForbidden = "forbidden"
)

// reply answers a control call with err's outcome.
func reply(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, replyBody{OK: true})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, replyBody{Error: err.Error(), Kind: KindNotFound})
	case errors.Is(err, ErrInvalidConfig):
		writeJSON(w, http.StatusUnprocessableEntity, replyBody{Error: err.Error(), Kind: KindConfig})
	default:
		writeJSON(w, http.StatusInternalServerError, replyBody{Error: err.Error(), Kind: KindFailed})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}
