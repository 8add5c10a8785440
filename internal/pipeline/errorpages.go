package pipeline

import "net/http"

// ErrorPages are an application's custom error pages (IIS <httpErrors>).
// The front door asks them about every error response (status 400 and
// above) of the application, the app's and its own alike, before its
// header is sent, and answers with the page they return instead.
type ErrorPages interface {
	// Page returns the page that replaces an error response with status
	// and substatus, or nil to send the response as it is. skip is IIS's
	// fTrySkipCustomErrors: the response is the app's, or a page ANCM
	// writes for it (502.5 startup failure, app_offline.htm), which only
	// existingResponse="Replace" replaces. Page is called concurrently.
	Page(r *Request, status, substatus int, skip bool) *ErrorPage
}

// ErrorPage is how a custom error page answers. Exactly one of its forms is
// set: Body (a file's bytes), ExecuteURL, Location, or Standard.
type ErrorPage struct {
	// Body is the page (responseMode="File"), sent with ContentType and
	// the error's status.
	Body        []byte
	ContentType string
	// ExecuteURL is a path (with query) of the same application whose
	// response is sent with the error's status (responseMode="ExecuteURL").
	// That response is not replaced again.
	ExecuteURL string
	// Location is sent with 302 Found (responseMode="Redirect").
	Location string
	// Standard replaces the response with the front door's own page for
	// the status (existingResponse="Replace" with no page for it).
	Standard bool
}

// skipSetter is implemented by the front door's ResponseWriter.
type skipSetter interface{ SkipCustomErrors() }

// SkipCustomErrors marks the response about to be written on w as one that
// custom error pages leave alone unless existingResponse="Replace" (IIS's
// fTrySkipCustomErrors), as ANCM marks its 502.5 and app_offline pages.
// The app's own responses are marked by SetUpstream with a header time.
func SkipCustomErrors(w http.ResponseWriter) {
	if s, ok := unwrapTo[skipSetter](w); ok {
		s.SkipCustomErrors()
	}
}
