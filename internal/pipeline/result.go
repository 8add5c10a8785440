package pipeline

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/pages"
)

// StatusClientClosedRequest is the status logged for a request whose client
// went away before any answer was written (nginx's 499); nothing is sent.
// The front door and the forwarder both report it.
const StatusClientClosedRequest = 499

// Result ends a request in the front door: a refusal (403.6, 404.7, 413), a
// redirect, a custom response, or an abort. Stages return one; WriteResult
// is the one place that answers it.
type Result struct {
	// Status is the HTTP status, e.g. 403. Ignored when Abort is set.
	Status int
	// Substatus is IIS's sub-status (6 for 403.6), shown in the page title
	// and the access log; 0 for none.
	Substatus int
	// Reason says why, for the log line; it is never shown to the client.
	Reason string
	// Stage names the stage for the log ("ipSecurity", "requestFiltering").
	Stage string
	// StatusText, when set, replaces the standard reason phrase of the
	// status line on HTTP/1.1 (URL Rewrite's CustomResponse statusReason);
	// HTTP/2 and HTTP/3 have none. It is sent on the lean HTTP/1.1 path
	// (cleartext); net/http, which serves HTTP/1.1 over TLS, always sends
	// the standard phrase.
	StatusText string
	// Location is the redirect target for a 3xx status.
	Location string
	// Header holds extra response fields (name, value), e.g. WWW-Authenticate.
	Header [][2]string
	// Body, when non-nil, is sent as is with ContentType instead of the
	// standard page (URL Rewrite's CustomResponse, a redirect's body).
	Body        []byte
	ContentType string
	// Abort closes the connection (or resets the HTTP/2 or HTTP/3 stream)
	// without answering (URL Rewrite's AbortRequest).
	Abort bool
	// Close asks for the connection to be closed after the answer (a
	// request whose body is refused and will not be read).
	Close bool
}

// Refuse returns a Result for a front-door refusal with the standard page.
func Refuse(stage string, status, substatus int, reason string) *Result {
	return &Result{Stage: stage, Status: status, Substatus: substatus, Reason: reason}
}

// Code returns the status as IIS writes it: "403.6", or "404".
func (res *Result) Code() string {
	if res.Substatus == 0 {
		return strconv.Itoa(res.Status)
	}
	return strconv.Itoa(res.Status) + "." + strconv.Itoa(res.Substatus)
}

// WriteResult answers res on w and writes its log line: the one funnel for
// every response the front door makes instead of the app. Redirects and
// answers with a body and a status under 400 (a CustomResponse of 200) are
// logged at debug level; refusals and aborts at info (they are the
// client's doing, not the server's). For res.Abort it panics with
// http.ErrAbortHandler on every path: net/http turns that into a closed
// connection or a reset stream, and the lean HTTP/1.x loop recovers it and
// closes the connection.
// w must not have been written to.
func WriteResult(w http.ResponseWriter, r *Request, res *Result, log *slog.Logger) {
	logResult(r, res, log)
	SetSubstatus(w, res.Substatus)
	var grpc string // the gRPC answer's Content-Type, if the client speaks gRPC
	if r != nil && r.Header != nil && res.Status >= 300 {
		grpc = pages.GRPCAnswerType(r.Header.Get("Content-Type"))
	}
	if res.StatusText != "" && grpc == "" { // a gRPC answer's status line is 200 OK
		if s, ok := unwrapTo[statusTextSetter](w); ok {
			s.SetStatusText(res.StatusText)
		}
	}
	if res.Abort {
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	for _, f := range res.Header {
		h.Add(f[0], f[1])
	}
	if res.Close && r != nil && (r.Proto == "HTTP/1.1" || r.Proto == "HTTP/1.0") {
		h.Set("Connection", "close")
	}
	if grpc != "" {
		// A gRPC client gets a gRPC status, never a page or a redirect
		// it cannot follow; the log keeps the IIS status.
		SetLogStatus(w, res.Status)
		pages.GRPC(w, grpc, res.Status, res.Substatus, pages.GRPCCode(res.Status), "")
		return
	}
	switch {
	case res.Body != nil:
		if res.ContentType != "" {
			h.Set("Content-Type", res.ContentType)
		}
		h.Set("Content-Length", strconv.Itoa(len(res.Body)))
		if res.Location != "" {
			h.Set("Location", res.Location)
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	case res.Location != "":
		h.Set("Location", res.Location)
		h.Set("Content-Length", "0")
		w.WriteHeader(res.Status)
	default:
		pages.Status(w, res.Status, res.Substatus, "")
	}
}

// WriteStatus answers r with the front door's page for status (pages.Status:
// an unknown host, a path no application takes), or, for a gRPC client, a
// gRPC status: the funnel for answers that need no log line. r may be nil.
func WriteStatus(w http.ResponseWriter, r *Request, status int) {
	if r != nil && r.Header != nil {
		if ct := pages.GRPCAnswerType(r.Header.Get("Content-Type")); ct != "" {
			SetLogStatus(w, status)
			pages.GRPC(w, ct, status, 0, pages.GRPCCode(status), "")
			return
		}
	}
	pages.Status(w, status, 0, "")
}

func logResult(r *Request, res *Result, log *slog.Logger) {
	if log == nil {
		return
	}
	level := slog.LevelInfo
	if res.Location != "" || (res.Body != nil && res.Status < 400) {
		level = slog.LevelDebug
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	msg := "request refused"
	switch {
	case res.Abort:
		msg = "request aborted"
	case res.Status < 400:
		msg = "request answered by the front door"
	}
	attrs := []slog.Attr{slog.String("stage", res.Stage), slog.String("status", res.Code()), slog.String("reason", res.Reason)}
	if r != nil {
		attrs = append(attrs, slog.String("site", r.Site), slog.String("app", r.AppPath),
			slog.String("method", r.Method), slog.String("path", r.Path), slog.String("client", r.ClientIP.String()))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}

// substatusSetter is implemented by the front door's ResponseWriter, so the
// access log can show IIS's sub-status (403.6, 502.5).
type substatusSetter interface{ SetSubstatus(int) }

// SetSubstatus hands sub to the first writer in w's Unwrap chain that
// records it (the front door's), for the access log. 0 does nothing.
func SetSubstatus(w http.ResponseWriter, sub int) {
	if sub == 0 {
		return
	}
	if s, ok := unwrapTo[substatusSetter](w); ok {
		s.SetSubstatus(sub)
	}
}

// statusTextSetter is implemented by the lean HTTP/1.1 writer, which can
// send a reason phrase of its own (Result.StatusText).
type statusTextSetter interface {
	SetStatusText(text string)
}

// logStatusSetter is implemented by the front door's ResponseWriter, so
// the access log and metrics show the status Gatehouse meant when the
// answer on the wire differs (a gRPC client's answer is HTTP 200 with the
// status in grpc-status).
type logStatusSetter interface{ SetLogStatus(int) }

// SetLogStatus hands status to the first writer in w's Unwrap chain that
// records it (the front door's), for the access log and metrics, in place
// of the status written on the wire.
func SetLogStatus(w http.ResponseWriter, status int) {
	if s, ok := unwrapTo[logStatusSetter](w); ok {
		s.SetLogStatus(status)
	}
}

// upstreamSetter is implemented by the front door's ResponseWriter, so the
// observers learn which app process answered and when (Done.PID,
// Done.FirstByte).
type upstreamSetter interface {
	SetUpstream(pid int, header time.Time)
}

// SetUpstream tells the first writer in w's Unwrap chain that records it
// (the front door's) that app process pid is serving the request and, when
// header is not zero, that its response header arrived then. A later call
// replaces an earlier one (a retry on a new process). header is only
// subtracted from the request's start (Done.FirstByte), by their
// monotonic readings: a time without one (not from time.Now or
// monoclock.Time) gives a FirstByte off by any wall clock change.
func SetUpstream(w http.ResponseWriter, pid int, header time.Time) {
	if s, ok := unwrapTo[upstreamSetter](w); ok {
		s.SetUpstream(pid, header)
	}
}

// unwrapTo returns the first writer in w's Unwrap chain (w itself first)
// that implements T, as http.ResponseController looks for its methods.
func unwrapTo[T any](w http.ResponseWriter) (T, bool) {
	for w != nil {
		if t, ok := w.(T); ok {
			return t, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	var zero T
	return zero, false
}
