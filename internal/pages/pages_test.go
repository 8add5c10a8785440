package pages

import (
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.html")

func TestPagesGolden(t *testing.T) {
	t.Parallel()
	longOutput := strings.Repeat("line of output\n", 150)
	tests := []struct {
		name        string
		write       func(w http.ResponseWriter)
		status      int
		contentType string
		retryAfter  string
		contains    []string
	}{
		{
			name: "startup",
			write: func(w http.ResponseWriter) {
				StartupFailure(w, &upstream.StartError{
					Command:  "/srv/app/MyApp --urls <x>",
					Reason:   "process exited during startup",
					ExitCode: 134,
					Output:   "Unhandled exception. System.Exception: <boom> & \"quotes\"\n   at Program.Main()\n",
				}, StartupOptions{})
			},
			status:      502,
			contentType: "text/html; charset=utf-8",
			contains: []string{StartupFailureTitle, "exit code 134", "&lt;boom&gt; &amp; &#34;quotes&#34;",
				"The application process failed to start", "journalctl -u gatehouse", "gatehouse logs SITE/APP", "<code>/srv/app/MyApp --urls &lt;x&gt;</code>"},
		},
		{
			name: "startup_signal_err_link",
			write: func(w http.ResponseWriter) {
				StartupFailure(w, &upstream.StartError{
					Command: "dotnet app.dll", Reason: "not listening on port 41234 after 2s",
					ExitCode: -1, Signal: "SIGKILL", Err: errors.New("wait: killed"), Output: longOutput,
				}, StartupOptions{AdditionalLink: "https://example.com/help?a=1&b=2"})
			},
			status:      502,
			contentType: "text/html; charset=utf-8",
			contains:    []string{"killed by signal SIGKILL", "Error: wait: killed", "(truncated)", `href="https://example.com/help?a=1&amp;b=2"`},
		},
		{
			name: "startup_hidden",
			write: func(w http.ResponseWriter) {
				StartupFailure(w, &upstream.StartError{Command: "x", Reason: "secret reason", Output: "secret"}, StartupOptions{HideDetails: true})
			},
			status:      502,
			contentType: "text/html; charset=utf-8",
			contains:    []string{StartupFailureTitle},
		},
		{
			name: "startup_disabled",
			write: func(w http.ResponseWriter) {
				StartupFailure(w, &upstream.StartError{Reason: "x"}, StartupOptions{Disabled: true})
			},
			status:      502,
			contentType: "",
		},
		{
			name: "badgateway_timeout",
			write: func(w http.ResponseWriter) {
				BadGateway(w, "The app did not respond within requestTimeout (00:02:00).")
			},
			status:      502,
			contentType: "text/html; charset=utf-8",
			contains:    []string{BadGatewayTitle, "00:02:00"},
		},
		{
			name: "unavailable_rapidfail",
			write: func(w http.ResponseWriter) {
				ServiceUnavailable(w, Unavailable{Reason: "The app crashed too often.", RetryAfter: 41500 * time.Millisecond, LastExit: "pid 12 exited with code 1 after 0.2s"})
			},
			status:      503,
			contentType: "text/html; charset=utf-8",
			retryAfter:  "42",
			contains:    []string{ServiceUnavailableTitle, "pid 12 exited with code 1", "42 seconds"},
		},
		{
			name:        "unavailable_shutdown",
			write:       func(w http.ResponseWriter) { ServiceUnavailable(w, Unavailable{Reason: "The app is shutting down."}) },
			status:      503,
			contentType: "text/html; charset=utf-8",
			contains:    []string{"shutting down"},
		},
		{
			name:        "offline",
			write:       func(w http.ResponseWriter) { Offline(w, []byte("<h1>Down for maintenance</h1>\xff")) },
			status:      503,
			contentType: "text/html",
			contains:    []string{"<h1>Down for maintenance</h1>\xff"},
		},
		{
			name:        "status_forbidden_ip",
			write:       func(w http.ResponseWriter) { Status(w, 403, 6, "") },
			status:      403,
			contentType: "text/html; charset=utf-8",
			contains:    []string{"<title>HTTP Error 403.6 - Forbidden</title>", "<p>Forbidden.</p>"},
		},
		{
			name:        "status_reason_escaped",
			write:       func(w http.ResponseWriter) { Status(w, 404, 0, "No <site> here.") },
			status:      404,
			contentType: "text/html; charset=utf-8",
			contains:    []string{"<title>HTTP Error 404 - Not Found</title>", "No &lt;site&gt; here."},
		},
		{
			name:        "offline_empty",
			write:       func(w http.ResponseWriter) { Offline(w, nil) },
			status:      503,
			contentType: "text/html",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Encoding", "gzip") // left over from a proxied response
			tt.write(rec)
			res := rec.Result()
			if res.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := res.Header.Get("Content-Encoding"); got != "" {
				t.Errorf("Content-Encoding = %q, want it removed", got)
			}
			if got := res.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			body := rec.Body.String()
			if got, want := res.Header.Get("Content-Length"), len(body); got != strconv.Itoa(want) {
				t.Errorf("Content-Length = %s, body is %d bytes", got, want)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			if strings.Contains(body, "secret") {
				t.Errorf("hidden details leaked into the page")
			}
			golden := filepath.Join("testdata", tt.name+".golden.html")
			if *update {
				if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test -update): %v", err)
			}
			if body != string(want) {
				t.Errorf("page differs from %s (run go test -update if intended)\ngot:\n%s", golden, body)
			}
		})
	}
}

func TestFirstLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		lines     int
		bytes     int
		want      string
		truncated bool
	}{
		{"short", "a\nb\n", 100, 100, "a\nb\n", false},
		{"no newline", "abc", 1, 100, "abc", false},
		{"line cap", "a\nb\nc\n", 2, 100, "a\nb\n", true},
		{"exactly lines", "a\nb\n", 2, 100, "a\nb\n", false},
		{"byte cap", "abcdef", 100, 3, "abc", true},
		{"utf8 not split", "aé", 100, 2, "a", true},
		{"empty", "", 1, 1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := FirstLines(tt.in, tt.lines, tt.bytes)
			if got != tt.want || cut != tt.truncated {
				t.Errorf("FirstLines(%q, %d, %d) = %q, %v; want %q, %v", tt.in, tt.lines, tt.bytes, got, cut, tt.want, tt.truncated)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59 * time.Second, 59}}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
