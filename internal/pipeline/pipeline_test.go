package pipeline

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestChainOrderAndStop(t *testing.T) {
	t.Parallel()
	var ran []string
	stage := func(name string, res *Result) Stage {
		return StageFunc(func(*Request) *Result { ran = append(ran, name); return res })
	}
	c := &Chain{In: []Stage{stage("ip", nil), stage("filter", Refuse("filter", 404, 7, "ext")), stage("rewrite", nil)}}
	res := c.Serve(&Request{})
	if res == nil || res.Code() != "404.7" {
		t.Fatalf("result = %+v, want 404.7", res)
	}
	if got := strings.Join(ran, ","); got != "ip,filter" {
		t.Errorf("stages ran %s, want ip,filter (stop at the first result)", got)
	}
	var nilChain *Chain
	if nilChain.Serve(&Request{}) != nil || nilChain.HasOut() {
		t.Error("a nil chain must pass every request")
	}
}

func TestWriteResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		res      *Result
		status   int
		header   map[string]string
		contains string
	}{
		{"refusal page", Refuse("ip", 403, 6, "10.0.0.1 not allowed"), 403,
			map[string]string{"Content-Type": "text/html; charset=utf-8"}, "HTTP Error 403.6 - Forbidden"},
		{"redirect", &Result{Status: 308, Location: "https://a.test/x?y"}, 308,
			map[string]string{"Location": "https://a.test/x?y", "Content-Length": "0"}, ""},
		{"custom body", &Result{Status: 418, Body: []byte("teapot"), ContentType: "text/plain", Header: [][2]string{{"X-A", "1"}}}, 418,
			map[string]string{"Content-Type": "text/plain", "Content-Length": "6", "X-A": "1"}, "teapot"},
		{"close", &Result{Status: 413, Close: true}, 413, map[string]string{"Connection": "close"}, "HTTP Error 413"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			WriteResult(rec, &Request{Proto: "HTTP/1.1"}, tt.res, nil)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			for k, v := range tt.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("body %q lacks %q", rec.Body.String(), tt.contains)
			}
			if strings.Contains(rec.Body.String(), "not allowed") {
				t.Error("the log reason reached the client")
			}
		})
	}
}

func TestWriteResultAbort(t *testing.T) {
	t.Parallel()
	defer func() {
		if v := recover(); v == nil || !errors.Is(v.(error), http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	WriteResult(httptest.NewRecorder(), &Request{}, &Result{Abort: true}, nil)
	t.Error("WriteResult returned on Abort")
}

type subWriter struct {
	http.ResponseWriter
	sub       int
	pid       int
	logStatus int
}

func (w *subWriter) SetLogStatus(n int) { w.logStatus = n }

func (w *subWriter) SetSubstatus(n int)               { w.sub = n }
func (w *subWriter) SetUpstream(pid int, _ time.Time) { w.pid = pid }
func (w *subWriter) Unwrap() http.ResponseWriter      { return w.ResponseWriter }

type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestUnwrapChain(t *testing.T) {
	t.Parallel()
	inner := &subWriter{ResponseWriter: httptest.NewRecorder()}
	w := wrapper{wrapper{inner}}
	SetSubstatus(w, 5)
	if inner.sub != 5 {
		t.Errorf("substatus = %d, want 5", inner.sub)
	}
	SetUpstream(w, 42, time.Time{})
	if inner.pid != 42 {
		t.Errorf("upstream pid = %d, want 42", inner.pid)
	}
}

// TestWriteResultGRPC checks that a gRPC client's refusal is a
// trailers-only gRPC answer (200, grpc-status, no page), with the IIS
// status kept for the log, and that the refusal's own fields stay.
func TestWriteResultGRPC(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	w := &subWriter{ResponseWriter: rec}
	r := &Request{Proto: "HTTP/2.0", Header: HTTPHeader{"Content-Type": {"application/grpc"}}}
	WriteResult(w, r, &Result{Status: 401, Header: [][2]string{{"WWW-Authenticate", "Basic"}}}, nil)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Grpc-Status") != "16" ||
		rec.Header().Get("Grpc-Message") != "HTTP Error 401 - Unauthorized" || rec.Header().Get("WWW-Authenticate") != "Basic" {
		t.Errorf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	if w.logStatus != 401 {
		t.Errorf("log status %d, want 401", w.logStatus)
	}

	// A refused body over HTTP/1.1 still closes the connection.
	rec = httptest.NewRecorder()
	r = &Request{Proto: "HTTP/1.1", Header: HTTPHeader{"Content-Type": {"application/grpc-web"}}}
	WriteResult(rec, r, &Result{Status: 413, Close: true}, nil)
	if rec.Code != 200 || rec.Header().Get("Grpc-Status") != "8" || rec.Header().Get("Connection") != "close" ||
		rec.Header().Get("Content-Type") != "application/grpc-web" {
		t.Errorf("413 with Close: got %d %v", rec.Code, rec.Header())
	}
}

// TestWriteStatus checks the answer without a log line: a page for a
// browser, a gRPC status for a gRPC client.
func TestWriteStatus(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteStatus(rec, &Request{Header: HTTPHeader{"Content-Type": {"application/grpc"}}}, 404)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Grpc-Status") != "12" {
		t.Errorf("gRPC: got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	rec = httptest.NewRecorder()
	WriteStatus(rec, &Request{Header: HTTPHeader{}}, 404)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "HTTP Error 404") {
		t.Errorf("browser: got %d %q", rec.Code, rec.Body.String())
	}
}

// routes are app paths, longest first.
type routes []string

func (rt routes) Route(path string) string {
	for _, app := range rt {
		if strings.HasPrefix(path, app) {
			return app
		}
	}
	return ""
}

// TestChainStopsWhenRewrittenElsewhere checks that a rewrite into another
// application ends this application's stages, and a rewrite within it
// does not.
func TestChainStopsWhenRewrittenElsewhere(t *testing.T) {
	t.Parallel()
	var ran []string
	c := &Chain{In: []Stage{
		StageFunc(func(r *Request) *Result { r.Rewrite(r.Path+"i/x", ""); return nil }),
		StageFunc(func(r *Request) *Result { ran = append(ran, r.Path); return nil }),
	}}
	rt := routes{"/api", "/"}
	for _, tt := range []struct{ path, want string }{{"/a", "/ai/x"}, {"/ap", ""}} {
		ran = nil
		r := &Request{Path: tt.path, AppPath: "/", Router: rt}
		if res := c.Serve(r); res != nil {
			t.Fatalf("%s: %+v", tt.path, res)
		}
		if got := strings.Join(ran, ","); got != tt.want {
			t.Errorf("%s rewritten to %s: later stages saw %q, want %q", tt.path, r.Path, got, tt.want)
		}
	}
}
