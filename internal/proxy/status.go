package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pages"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// queueFullRetryAfter is the Retry-After sent with 503.2 (queue full): the
// queue moves at the speed of single requests, so soon.
const queueFullRetryAfter = time.Second

// StatusFor maps an error from a Backend or from forwarding to the status
// and IIS sub-status Gatehouse answers with. It is pure; err should be
// non-nil (nil gives 200, 0).
//
//	*StartError / ErrStartupFailed      502.5 startup failure page
//	*RapidFailError / ErrRapidFails     503   with Retry-After (restarts paused)
//	ErrShuttingDown                     503
//	ErrQueueFull                        503.2 with Retry-After (IIS: concurrent request limit)
//	*OfflineError / ErrOffline          503   app_offline.htm
//	context.Canceled (client gone)      499   nothing written
//	request body over the limit         413   (*http.MaxBytesError), then close
//	request body unreadable             400   (bad chunked framing), then close
//	request body timeout                408   then close
//	request body cut short (client gone) 499  nothing written
//	anything else (refused, reset,
//	timeout, requestTimeout deadline)   502.3 bad gateway
//
// The rapid-fail cut-off is 503 rather than ANCM's 502.5: the app is not
// failing to start, restarts are paused, and clients should come back after
// Retry-After.
func StatusFor(err error) (status, substatus int) {
	switch {
	case err == nil:
		return http.StatusOK, 0
	case errors.Is(err, upstream.ErrStartupFailed):
		return http.StatusBadGateway, 5
	case errors.Is(err, upstream.ErrRapidFails),
		errors.Is(err, upstream.ErrShuttingDown),
		errors.Is(err, upstream.ErrOffline):
		return http.StatusServiceUnavailable, 0
	case errors.Is(err, upstream.ErrQueueFull):
		return http.StatusServiceUnavailable, 2
	case errors.As(err, new(*clientBodyError)), errors.As(err, new(*http.MaxBytesError)):
		return bodyErrorStatus(err), 0
	case errors.Is(err, context.Canceled):
		return pipeline.StatusClientClosedRequest, 0
	default:
		return http.StatusBadGateway, 3
	}
}

// ErrorOptions tells answerError how to answer and what to log.
type ErrorOptions struct {
	// DisableStartUpErrorPage: 502.5 is sent with an empty body.
	DisableStartUpErrorPage bool
	// HideDetails leaves reason, command, exit status and output off the
	// 502.5 page, and the last exit off the 503 rapid-fail page.
	HideDetails bool
	// RequestTimeout is named on the 502.3 page when a timeout caused it.
	RequestTimeout time.Duration
	// PID is the app process involved, for the log; 0 if none.
	PID int
	// Log receives the one line about this failure; nil discards.
	Log *slog.Logger
	// GRPC, when not empty, says that the client speaks gRPC (its
	// Content-Type is application/grpc*) and gets a gRPC status instead of
	// a page (pages.GRPC), with this Content-Type (pages.GRPCAnswerType).
	GRPC string
}

// answerError is the single error funnel: it logs err once, with its
// cause, and answers the client with the page for StatusFor(err). The
// client sees only the page, never err's text, except for the start failure
// details the 502.5 page is meant to show. If the client is already gone
// (ctx is cancelled), nothing is written, the status is logged as 499 and
// answerError panics with http.ErrAbortHandler, which both ways into the
// front door turn into a closed connection or a reset stream. method and
// path are for the log line. It must be called before anything was written
// to w.
func answerError(w http.ResponseWriter, ctx context.Context, method, path string, err error, opts ErrorOptions) {
	status, sub := StatusFor(err)
	// A failed body read cancels the request's context too (net/http does
	// so on any connection read error, a body timeout included); the
	// body's error says better what happened.
	if ctx.Err() == context.Canceled && !errors.As(err, new(*clientBodyError)) {
		status, sub = pipeline.StatusClientClosedRequest, 0
	}
	logError(ctx, method, path, err, status, sub, opts)
	pipeline.SetSubstatus(w, sub)

	if opts.GRPC != "" && status != pipeline.StatusClientClosedRequest {
		if status == http.StatusBadRequest || status == http.StatusRequestTimeout || status == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close") // the rest of the body is unread
		}
		pipeline.SetLogStatus(w, status)
		code := pages.GRPCCode(status)
		if errors.Is(err, errGRPCDeadline) {
			code = pages.GRPCDeadlineExceeded // the client's own deadline, not the app's failure
		}
		pages.GRPC(w, opts.GRPC, status, sub, code, grpcReason(err, status, sub))
		return
	}
	switch status {
	case pipeline.StatusClientClosedRequest:
		// Nothing to say to a client that is gone; and if only its request
		// was cut (a read deadline cancels the context too), net/http must
		// not send a 200 of its own: close the connection or reset the
		// stream instead (both ways in recover this panic).
		panic(http.ErrAbortHandler)
	case http.StatusServiceUnavailable:
		writeUnavailable(w, err, opts.HideDetails)
		return
	case http.StatusBadRequest, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge:
		// The rest of the body is unread: the connection cannot be reused.
		w.Header().Set("Connection", "close")
		pages.Status(w, status, 0, "")
		return
	}
	if sub == 5 {
		var se *upstream.StartError
		errors.As(err, &se) // se stays nil for a bare ErrStartupFailed
		if !opts.DisableStartUpErrorPage {
			pipeline.SkipCustomErrors(w) // ANCM's fTrySkipCustomErrors; without the page, <httpErrors> take over
		}
		pages.StartupFailure(w, se, pages.StartupOptions{
			Disabled:    opts.DisableStartUpErrorPage,
			HideDetails: opts.HideDetails,
		})
		return
	}
	reason := "The connection to the app failed."
	if isTimeout(err) && opts.RequestTimeout > 0 {
		reason = "The app did not respond within requestTimeout (" + config.FormatTimeSpan(opts.RequestTimeout) + ")."
	} else if isTimeout(err) {
		reason = "The app did not respond in time."
	}
	pages.BadGateway(w, reason)
}

// grpcReason says in a few words why a gRPC client got status.sub for
// err; like the pages, it never shows err's text.
func grpcReason(err error, status, sub int) string {
	switch {
	case sub == 5:
		return "the app failed to start"
	case errors.Is(err, upstream.ErrOffline):
		return "the app is offline (app_offline.htm)"
	case errors.Is(err, upstream.ErrRapidFails):
		return "the app exited too often; restarts are paused"
	case errors.Is(err, upstream.ErrQueueFull):
		return "too many requests are waiting for the app"
	case errors.Is(err, upstream.ErrShuttingDown):
		return "the app is shutting down"
	case errors.Is(err, errGRPCDeadline):
		return "grpc-timeout expired before the app answered"
	case status == http.StatusBadGateway && isTimeout(err):
		return "the app did not respond in time"
	case status == http.StatusBadGateway:
		return "the connection to the app failed"
	}
	return ""
}

// writeUnavailable writes the 503 page for err; hide leaves the app's last
// exit (pid, exit status) off it.
func writeUnavailable(w http.ResponseWriter, err error, hide bool) {
	var (
		off *upstream.OfflineError
		rf  *upstream.RapidFailError
	)
	switch {
	case errors.As(err, &off):
		pipeline.SkipCustomErrors(w) // ANCM's fTrySkipCustomErrors
		pages.Offline(w, off.Body)
	case errors.Is(err, upstream.ErrOffline):
		pipeline.SkipCustomErrors(w)
		pages.Offline(w, nil)
	case errors.As(err, &rf):
		u := pages.Unavailable{
			Reason: fmt.Sprintf("The app exited more than %d times within a minute (rapidFailsPerMinute); "+
				"it will be started again when the window ends.", rf.Limit),
			RetryAfter: max(rf.RetryAfter, time.Second),
		}
		if !hide {
			u.LastExit = rf.LastExit
		}
		pages.ServiceUnavailable(w, u)
	case errors.Is(err, upstream.ErrRapidFails):
		pages.ServiceUnavailable(w, pages.Unavailable{Reason: "The app exited too often; restarts are paused.", RetryAfter: time.Minute})
	case errors.Is(err, upstream.ErrQueueFull):
		pages.ServiceUnavailable(w, pages.Unavailable{Reason: "Too many requests are waiting for the app.", RetryAfter: queueFullRetryAfter})
	case errors.Is(err, upstream.ErrStopped):
		pages.ServiceUnavailable(w, pages.Unavailable{Reason: "The app has been stopped by its administrator."})
	default:
		pages.ServiceUnavailable(w, pages.Unavailable{Reason: "The app is shutting down."})
	}
}

// logError writes the one log line for a failed request. Offline answers are
// the normal state while app_offline.htm is present, so they are debug.
func logError(ctx context.Context, method, path string, err error, status, sub int, opts ErrorOptions) {
	if opts.Log == nil {
		return
	}
	level := slog.LevelError
	switch {
	case status == pipeline.StatusClientClosedRequest:
		// Routine, and by the thousand in a reset flood: the access log
		// has each one (499), the log needs none of them.
		level = slog.LevelDebug
	case status < 500, errors.Is(err, errGRPCDeadline):
		// The client's doing; for gRPC its own deadline (grpc-timeout),
		// which gRPC clients set on every call and reach routinely.
		level = slog.LevelInfo
	case errors.Is(err, upstream.ErrOffline):
		level = slog.LevelDebug
	case status == http.StatusServiceUnavailable:
		level = slog.LevelWarn
	}
	if !opts.Log.Enabled(ctx, level) {
		return
	}
	code := strconv.Itoa(status)
	if sub != 0 {
		code += "." + strconv.Itoa(sub)
	}
	// ctx may be cancelled (client gone); logging must still happen.
	opts.Log.LogAttrs(context.WithoutCancel(ctx), level, "request failed",
		slog.Int("pid", opts.PID),
		slog.String("method", method),
		slog.String("path", path),
		slog.String("status", code),
		slog.Any("err", err),
	)
}

// isTimeout reports whether err is a timeout: requestTimeout expiring as a
// connection deadline, the Transport's response header timeout, or a
// context deadline.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
