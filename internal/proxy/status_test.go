package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

func TestAcquireErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		disable    bool
		wantStatus int
		wantType   string
		wantBody   []string
		wantEmpty  bool
		wantRetry  string
		wantNot    []string
	}{
		{name: "startup failure", err: &upstream.StartError{Command: "dotnet app.dll", Reason: "process exited during startup", ExitCode: 1, Output: "boom <x>"},
			wantStatus: 502, wantType: "text/html; charset=utf-8",
			wantBody: []string{"HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure", "exit code 1", "boom &lt;x&gt;"}},
		{name: "startup failure page disabled", err: &upstream.StartError{Reason: "x"}, disable: true, wantStatus: 502, wantEmpty: true},
		{name: "rapid fail", err: &upstream.RapidFailError{Limit: 10, RetryAfter: 30 * time.Second, LastExit: "pid 9 exited with code 3"},
			wantStatus: 503, wantType: "text/html; charset=utf-8", wantRetry: "30", wantBody: []string{"pid 9 exited with code 3", "rapidFailsPerMinute"}},
		{name: "shutting down", err: upstream.ErrShuttingDown, wantStatus: 503, wantType: "text/html; charset=utf-8", wantBody: []string{"shutting down"}},
		{name: "stopped by the operator", err: fmt.Errorf("acquire: %w", upstream.ErrStopped), wantStatus: 503, wantType: "text/html; charset=utf-8",
			wantBody: []string{"stopped by its administrator"}, wantNot: []string{"shutting down"}},
		{name: "queue full", err: upstream.ErrQueueFull, wantStatus: 503, wantType: "text/html; charset=utf-8", wantRetry: "1"},
		{name: "offline", err: &upstream.OfflineError{Body: []byte("<p>back soon</p>")}, wantStatus: 503, wantType: "text/html", wantBody: []string{"<p>back soon</p>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &Handler{Backend: &fakeBackend{acquire: func(int) (*upstream.Lease, error) { return nil, tt.err }}, DisableStartUpErrorPage: tt.disable}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = "127.0.0.1:1234" // from the machine: details shown
			forwardHandler{h: h}.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if tt.wantEmpty && rec.Body.Len() != 0 {
				t.Errorf("body = %q, want empty", rec.Body)
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("body says %q", s)
				}
			}
		})
	}
}

func TestStatusFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		err         error
		status, sub int
	}{
		{"start error", &upstream.StartError{Reason: "x"}, 502, 5},
		{"wrapped start error", errors.Join(errors.New("acquire"), &upstream.StartError{}), 502, 5},
		{"bare startup sentinel", upstream.ErrStartupFailed, 502, 5},
		{"rapid fail", &upstream.RapidFailError{Limit: 10}, 503, 0},
		{"shutting down", upstream.ErrShuttingDown, 503, 0},
		{"queue full", upstream.ErrQueueFull, 503, 2},
		{"offline", &upstream.OfflineError{}, 503, 0},
		{"client gone", context.Canceled, 499, 0},
		{"client gone during forward", &BackendError{PID: 1, Err: context.Canceled}, 499, 0},
		{"request timeout deadline", &BackendError{Err: context.DeadlineExceeded}, 502, 3},
		{"conn deadline", &BackendError{Err: &net.OpError{Op: "read", Err: timeoutErr{}}}, 502, 3},
		{"refused", &BackendError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, 502, 3},
		{"reset", &BackendError{Err: io.ErrUnexpectedEOF}, 502, 3},
		{"nil", nil, 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, sub := StatusFor(tt.err)
			if status != tt.status || sub != tt.sub {
				t.Errorf("StatusFor(%v) = %d.%d, want %d.%d", tt.err, status, sub, tt.status, tt.sub)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// subRecorder is a ResponseWriter wrapper like the front door's, reached
// through Unwrap.
type subRecorder struct {
	http.ResponseWriter
	sub int
}

func (s *subRecorder) SetSubstatus(n int) { s.sub = n }

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestAnswerErrorSetsSubstatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&upstream.StartError{Command: "x", Reason: "exited", ExitCode: 1}, 5},
		{&BackendError{PID: 1, Err: io.ErrUnexpectedEOF}, 3},
		{upstream.ErrShuttingDown, 0},
	} {
		rec := &subRecorder{ResponseWriter: httptest.NewRecorder()}
		answerError(unwrapper{rec}, t.Context(), "GET", "/", tc.err, ErrorOptions{})
		if rec.sub != tc.want {
			t.Errorf("answerError(%v): substatus %d, want %d", tc.err, rec.sub, tc.want)
		}
	}
}
