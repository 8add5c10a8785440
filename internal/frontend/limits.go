package frontend

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/h1"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// limits are the request limits with -1 ("none") turned into 0.
type limits struct {
	maxRequestBytes int
	maxURL          int
	maxQuery        int
	maxBody         int64
	bodyTimeout     time.Duration
}

func limitsOf(cfg *siteconfig.Config) limits {
	pos := func(v int) int { return max(v, 0) }
	return limits{
		maxRequestBytes: pos(cfg.Limits.MaxRequestBytes),
		maxURL:          pos(cfg.Limits.MaxURL),
		maxQuery:        pos(cfg.Limits.MaxQueryString),
		maxBody:         max(cfg.Limits.MaxAllowedContentLength, 0),
		bodyTimeout:     max(cfg.Timeouts.Body, 0),
	}
}

// of returns the limits for a request to an application whose settings in
// force are cur (nil: no application): the site's, with those the app's
// web.config sets in their place. It does not allocate.
func (lim *limits) of(cur pipeline.App) limits {
	l := *lim
	if cur == nil {
		return l
	}
	c := cur.Chain()
	if c == nil || c.Limits == nil {
		return l
	}
	if v := c.Limits.MaxURL; v > 0 {
		l.maxURL = v
	}
	if v := c.Limits.MaxQueryString; v > 0 {
		l.maxQuery = v
	}
	if v := c.Limits.MaxAllowedContentLength; v > 0 {
		l.maxBody = v
	}
	return l
}

// check applies the site's request limits; it returns nil when the request
// may pass, else the refusal with IIS's status and substatus.
func (lim *limits) check(r *pipeline.Request) *pipeline.Result {
	if lim.maxURL > 0 && len(r.Path) > lim.maxURL {
		return pipeline.Refuse("limits", http.StatusNotFound, 14, "maxUrl")
	}
	if lim.maxQuery > 0 && len(r.RawQuery) > lim.maxQuery {
		return pipeline.Refuse("limits", http.StatusNotFound, 15, "maxQueryString")
	}
	if lim.maxRequestBytes > 0 && requestBytes(r) > lim.maxRequestBytes {
		res := pipeline.Refuse("limits", http.StatusRequestHeaderFieldsTooLarge, 0, "maxRequestBytes")
		res.Close = true // a client that sends this much is not one to keep
		return res
	}
	if lim.maxBody > 0 && r.ContentLength > lim.maxBody {
		res := pipeline.Refuse("limits", http.StatusRequestEntityTooLarge, 0, "maxAllowedContentLength")
		res.Close = true
		return res
	}
	return nil
}

// requestBytes estimates the size of the request line and headers as sent
// on HTTP/1.1 ("Name: value\r\n"); HTTP/2 and HTTP/3 are measured the same
// way so one limit means the same on every protocol.
func requestBytes(r *pipeline.Request) int {
	n := len(r.Method) + len(r.Path) + len(r.RawQuery) + 1 + len(" HTTP/1.1\r\n") + len("Host: \r\n") + len(r.Host) + 2
	switch h := r.Header.(type) { // no closure to allocate
	case pipeline.HTTPHeader:
		for k, vs := range h {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		return n
	case *h1.Header:
		for _, f := range h.Fields {
			n += len(f.Name) + len(f.Value) + 4
		}
		return n
	}
	return n + headerBytes(r.Header)
}

// headerBytes is the size of h's fields as "Name: value\r\n" lines.
func headerBytes(h pipeline.Header) int {
	n := 0
	h.Range(func(k, v string) bool {
		n += len(k) + len(v) + 4
		return true
	})
	return n
}
