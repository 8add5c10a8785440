// Package pages writes the responses Gatehouse sends in place of the app:
// the ANCM-style error pages (502.5 startup failure, 502.3 bad gateway, 503
// service unavailable) and the app_offline.htm response.
//
// Every function here writes a complete response (headers, status, body) and
// must be called before anything else was written to w. The HTML comes from
// templates embedded in the binary; every value put into a page is
// HTML-escaped. The sub-status (502.5, 502.3) is shown in the page title, as
// IIS shows it; on the wire the status line carries only the three digits.
package pages

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

//go:embed templates/*.html
var templateFS embed.FS

// templates parses the pages on first use (parsing at init cost every
// gatehouse start ~5 ms, the socket-activation shim included) and returns the
// same set ever after; it is never changed, so it is safe for concurrent use.
var templates = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templateFS, "templates/*.html"))
})

// Titles of the pages, as IIS and ANCM word them.
const (
	StartupFailureTitle     = "HTTP Error 502.5 - ANCM Out-Of-Process Startup Failure"
	BadGatewayTitle         = "HTTP Error 502.3 - Bad Gateway"
	ServiceUnavailableTitle = "HTTP Error 503 - Service Unavailable"
)

// Limits on how much of the app's output the startup failure page shows.
const (
	MaxOutputLines = 100
	MaxOutputBytes = 16 << 10
)

// StartupOptions controls the 502.5 page.
type StartupOptions struct {
	// Disabled is disableStartUpErrorPage: the response is 502 with an
	// empty body (ANCM V2 behaviour).
	Disabled bool
	// HideDetails leaves the Gatehouse additions off the page: the reason,
	// command, exit status and the app's first lines of output. With it the
	// page is ANCM's fixed text only. The proxy sets it for clients that
	// <httpErrors errorMode> does not allow to see details (by default,
	// every client not on the machine itself), since app output may hold
	// secrets.
	HideDetails bool
	// AdditionalLink is ANCM_ADDITIONAL_ERROR_PAGE_LINK: an extra link shown
	// before the standard troubleshooting link. Empty means none.
	AdditionalLink string
}

// StartupFailure writes the 502.5 "ANCM Out-Of-Process Startup Failure"
// page for e. e may be nil (the page then has no details).
func StartupFailure(w http.ResponseWriter, e *upstream.StartError, opts StartupOptions) {
	if opts.Disabled {
		setCommonHeaders(w.Header(), "")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	data := startupData{Title: StartupFailureTitle, AdditionalLink: opts.AdditionalLink}
	if e != nil && !opts.HideDetails {
		data.Start = newStartDetails(e)
	}
	render(w, http.StatusBadGateway, "startup.html", data)
}

// BadGateway writes the 502.3 "Bad Gateway" page with reason, a sentence
// for the client such as "The connection to the app failed.". reason must
// not hold secrets (it is shown to the client).
func BadGateway(w http.ResponseWriter, reason string) {
	render(w, http.StatusBadGateway, "badgateway.html", reasonData{Title: BadGatewayTitle, Reason: reason})
}

// Unavailable describes a 503 response.
type Unavailable struct {
	// Reason is one sentence for the client, e.g. "The app is shutting down.".
	Reason string
	// RetryAfter, if positive, is sent as a Retry-After header in whole
	// seconds (rounded up) and shown on the page. Zero or negative: no header.
	RetryAfter time.Duration
	// LastExit describes the app's last exit (rapid-fail cut-off); empty
	// means none is shown.
	LastExit string
}

// ServiceUnavailable writes the 503 "Service Unavailable" page for u.
func ServiceUnavailable(w http.ResponseWriter, u Unavailable) {
	data := reasonData{Title: ServiceUnavailableTitle, Reason: u.Reason, LastExit: u.LastExit}
	if u.RetryAfter > 0 {
		data.RetryAfter = RetryAfterSeconds(u.RetryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(data.RetryAfter))
	}
	render(w, http.StatusServiceUnavailable, "unavailable.html", data)
}

// Offline writes the app_offline.htm response: 503 with body as is and
// Content-Type text/html, as ANCM does. An empty or nil body gives an
// empty 503 (ANCM's answer for an empty or locked file).
func Offline(w http.ResponseWriter, body []byte) {
	setCommonHeaders(w.Header(), "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do about it
}

// Status writes the front door's page for a status it answers itself: a
// refusal of the request filtering or IP restrictions (404.7, 403.6), an
// unknown host (404), a limit (413, 431). The title is IIS's ("HTTP Error
// 404.7 - Not Found"); reason is one sentence for the client, or "" for
// the status text alone. The page names nothing about the server's sites
// or apps.
func Status(w http.ResponseWriter, status, substatus int, reason string) {
	code := strconv.Itoa(status)
	if substatus != 0 {
		code += "." + strconv.Itoa(substatus)
	}
	text := http.StatusText(status)
	if reason == "" {
		reason = text + "."
	}
	render(w, status, "status.html", reasonData{Title: "HTTP Error " + code + " - " + text, Reason: reason})
}

// RetryAfterSeconds returns d in whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

type startupData struct {
	Title          string
	AdditionalLink string
	Start          *startDetails
}

type startDetails struct {
	Reason    string
	Command   string
	Exit      string
	Err       string
	Output    string
	Truncated bool
}

func newStartDetails(e *upstream.StartError) *startDetails {
	d := &startDetails{Reason: e.Reason, Command: e.Command}
	switch {
	case e.Signal != "":
		d.Exit = "killed by signal " + e.Signal
	case e.ExitCode >= 0:
		d.Exit = "exit code " + strconv.Itoa(e.ExitCode)
	}
	if e.Err != nil {
		d.Err = e.Err.Error()
	}
	d.Output, d.Truncated = FirstLines(e.Output, MaxOutputLines, MaxOutputBytes)
	return d
}

// FirstLines returns at most maxLines lines and maxBytes bytes from the start
// of s, never cutting a UTF-8 sequence, and whether anything was cut.
func FirstLines(s string, maxLines, maxBytes int) (string, bool) {
	cut := false
	if len(s) > maxBytes {
		s, cut = s[:maxBytes], true
		for len(s) > 0 && !utf8.ValidString(s[max(0, len(s)-utf8.UTFMax):]) {
			s = s[:len(s)-1]
		}
	}
	n, i := 0, 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		n++
		if n == maxLines {
			if i < len(s) {
				s, cut = s[:i], true
			}
			break
		}
	}
	return s, cut
}

type reasonData struct {
	Title      string
	Reason     string
	LastExit   string
	RetryAfter int
}

// render executes the named template into a buffer first, so a template
// error can never leave a half-written page, then writes status and body.
func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates().ExecuteTemplate(&buf, name, data); err != nil {
		// The templates are fixed and tested; this is a programming error.
		// Fall back to the bare status rather than a broken page.
		buf.Reset()
		buf.WriteString(http.StatusText(status))
	}
	setCommonHeaders(w.Header(), "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the client may be gone; nothing to do about it
}

// setCommonHeaders clears what a proxied response may have left in h and sets
// the headers every generated page carries. contentType "" sets none.
func setCommonHeaders(h http.Header, contentType string) {
	for k := range h {
		// Matched without case: a proxied response keeps its keys as the
		// app wrote them ("ETag").
		for _, name := range []string{"Content-Encoding", "Content-Length", "Etag", "Last-Modified", "Transfer-Encoding", "Trailer"} {
			if strings.EqualFold(k, name) {
				delete(h, k)
			}
		}
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
		h.Set("X-Content-Type-Options", "nosniff")
	} else {
		delete(h, "Content-Type")
	}
	h.Set("Cache-Control", "no-store")
}
