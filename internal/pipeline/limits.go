package pipeline

// Limits are request limits an application sets for itself. Each one
// replaces the site's limit of the same name; 0 keeps the site's.
type Limits struct {
	// MaxAllowedContentLength (bytes) is the largest request body: a larger
	// Content-Length gets 413, a chunked body is cut there.
	MaxAllowedContentLength int64
	// MaxURL (bytes) is the longest path: 404.14 over it.
	MaxURL int
	// MaxQueryString (bytes) is the longest query string: 404.15 over it.
	MaxQueryString int
}
