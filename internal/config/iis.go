package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The IIS modules that run beside ANCM, as an app's web.config sets them in
// <system.webServer>. Each section is a pointer field of App that is nil
// when the file does not have the section, so an app without them builds
// no front-door stage.

// RequestFiltering is <security><requestFiltering> (IIS Request Filtering).
// The zero value filters nothing and keeps the site's limits.
type RequestFiltering struct {
	// AllowDoubleEscaping (allowDoubleEscaping, default false): when false, a
	// path that still holds '%' or '+' after one round of unescaping is
	// refused with 404.11.
	AllowDoubleEscaping bool
	// AllowHighBitCharacters (allowHighBitCharacters, default true): when
	// false, a path or query string holding a byte ≥ 0x80, raw or
	// %-escaped, is refused with 404.12.
	AllowHighBitCharacters bool
	// UnescapeQueryString (unescapeQueryString, default true): query
	// sequences are also matched against the unescaped query string.
	UnescapeQueryString bool

	// Limits is <requestLimits>: each limit set here replaces the site's for
	// this app.
	Limits RequestLimits

	// FileExtensions is <fileExtensions>: 404.7.
	FileExtensions FileExtensions
	// Verbs is <verbs>: 404.6.
	Verbs Verbs
	// HiddenSegments (<hiddenSegments><add segment>) are path segments that
	// are never served, compared without case: 404.8.
	HiddenSegments []string
	// DenyURLSequences (<denyUrlSequences><add sequence>) refuse a path that
	// contains one, compared without case after unescaping: 404.5.
	DenyURLSequences []string
	// DenyQueryStringSequences (<denyQueryStringSequences><add sequence>)
	// refuse a query string that contains one, without case: 404.18.
	DenyQueryStringSequences []string

	// RemoveServerHeader (removeServerHeader, default false): the Server
	// field is removed from every response of the app.
	RemoveServerHeader bool

	// ServerEdits is what the file did to the lists IIS's
	// applicationHost.config gives every site (see iis.ServerDefaults):
	// FileExtensions.Rules and HiddenSegments above hold only the file's own
	// entries.
	ServerEdits ServerEdits
}

// ServerEdits records the <clear/> and <remove> elements of an app's
// <fileExtensions> and <hiddenSegments>, which in IIS edit the
// server-level lists the app inherits.
type ServerEdits struct {
	// ClearExtensions and ClearHidden are set by a <clear/>: nothing of the
	// server's list is inherited.
	ClearExtensions, ClearHidden bool
	// RemovedExtensions and RemovedHidden are the keys of <remove>
	// elements, as written.
	RemovedExtensions, RemovedHidden []string
}

// RequestLimits is <requestFiltering><requestLimits>. A limit of 0 means
// the site's limit applies (the attribute was not written, or was 0); IIS
// itself has no "0 = inherit", see docs/iis-modules.md.
type RequestLimits struct {
	// MaxAllowedContentLength (maxAllowedContentLength, bytes): largest
	// request body; over it 413 (IIS logs 404.13).
	MaxAllowedContentLength int64
	// MaxURL (maxUrl, bytes): longest path; over it 404.14.
	MaxURL int
	// MaxQueryString (maxQueryString, bytes): longest query string; over it
	// 404.15.
	MaxQueryString int
	// HeaderLimits (<headerLimits><add header sizeLimit>): longest value of
	// a request header, by name without case; over it 404.10.
	HeaderLimits []HeaderLimit
}

// HeaderLimit is one <headerLimits><add>.
type HeaderLimit struct {
	Header    string
	SizeLimit int
}

// FileExtensions is <requestFiltering><fileExtensions>.
type FileExtensions struct {
	// AllowUnlisted (allowUnlisted, default true): when false, only the
	// extensions added with allowed="true" are served.
	AllowUnlisted bool
	// Rules (<add fileExtension allowed>) in file order; extensions are
	// lower-cased and start with '.' ("" never matches).
	Rules []ExtensionRule
}

// ExtensionRule is one <fileExtensions><add>.
type ExtensionRule struct {
	Extension string
	Allowed   bool
}

// Verbs is <requestFiltering><verbs>.
type Verbs struct {
	// AllowUnlisted (allowUnlisted, default true): when false, only the verbs
	// added with allowed="true" are served.
	AllowUnlisted bool
	// Rules (<add verb allowed>) in file order; verbs are case-sensitive, as
	// in HTTP.
	Rules []VerbRule
}

// VerbRule is one <verbs><add>.
type VerbRule struct {
	Verb    string
	Allowed bool
}

// IPSecurity is <security><ipSecurity> (IP and Domain Restrictions).
type IPSecurity struct {
	// AllowUnlisted (allowUnlisted, default true): what happens to a client
	// no rule matches.
	AllowUnlisted bool
	// DenyAction (denyAction, "Unauthorized" | "Forbidden" | "NotFound" |
	// "AbortRequest", default "Forbidden"): how a denied client is
	// answered.
	DenyAction string
	// Rules (<add ipAddress subnetMask allowed>) in file order; the first
	// rule that matches the client decides.
	Rules []IPRule
}

// DynamicIPSecurity is <security><dynamicIpSecurity> (Dynamic IP
// Restrictions): it denies clients that send too many requests at once or
// too fast. A limit of 0 is off.
type DynamicIPSecurity struct {
	// DenyAction (denyAction, "Unauthorized" | "Forbidden" | "NotFound" |
	// "AbortRequest", default "Forbidden"): how a denied request is
	// answered, with sub-status 501 (concurrent requests) or 502 (request
	// rate).
	DenyAction string
	// LoggingOnly (enableLoggingOnlyMode, default false): requests over a
	// limit are logged as denied and served.
	LoggingOnly bool
	// MaxConcurrentRequests (<denyByConcurrentRequests enabled="true"
	// maxConcurrentRequests>, default 5 when enabled): requests one client
	// may have in progress.
	MaxConcurrentRequests int
	// MaxRequests per RequestInterval (<denyByRequestRate enabled="true"
	// maxRequests requestIntervalInMilliseconds>, defaults 20 per 200 ms
	// when enabled): requests one client may start in each interval.
	MaxRequests     int
	RequestInterval time.Duration
}

// Location is a <location path="sub"> of an app's web.config with the
// sections, beside authentication, authorization and httpRedirect, that
// apply to part of the app: each is the app's section as the location's
// edits it (IIS merges them so, whatever their order in the file); nil
// when neither the app nor the location has it.
type Location struct {
	// Path is relative to the app, without leading or trailing slash
	// ("api", "files/public"); matched segment-wise and without case.
	Path string
	// Line is the line of the (first) <location> element for Path.
	Line             int
	RequestFiltering *RequestFiltering
	CustomHeaders    *CustomHeaders
	IPSecurity       *IPSecurity
	URLCompression   *URLCompression
	// DynamicIPSecurity, HTTPErrors and ErrorMode are the location's
	// <dynamicIpSecurity> and <httpErrors> merged onto the app's; nil
	// (and the app's ErrorMode) when it has none.
	DynamicIPSecurity *DynamicIPSecurity
	HTTPErrors        *HTTPErrors
	ErrorMode         ErrorMode
	// Rewrite is the app's inbound rules followed by the location's own
	// (RewriteRule.Base), after its <remove> and <clear/>; nil when the
	// location has no <rewrite>.
	Rewrite *Rewrite
}

// IPRule is one <ipSecurity><add>.
type IPRule struct {
	// Prefix is ipAddress with subnetMask as a prefix (a single address has
	// all bits).
	Prefix  netip.Prefix
	Allowed bool
}

// CustomHeaders is <httpProtocol>: the fields added to responses.
type CustomHeaders struct {
	// Headers (<customHeaders>) are added to every response of the app,
	// after <clear/> and <remove name> were applied, in file order.
	Headers []HeaderField
	// Redirect (<redirectHeaders>) are added to redirect responses (3xx with
	// a Location) only.
	Redirect []HeaderField
}

// HeaderField is one response header field.
type HeaderField struct {
	Name  string
	Value string
}

// URLCompression is <urlCompression>.
type URLCompression struct {
	// DoDynamicCompression (doDynamicCompression, default true in IIS):
	// compress the app's responses, with the types, levels and minimum size
	// of the site config.
	DoDynamicCompression bool
	// DoStaticCompression (doStaticCompression) is read and has no effect:
	// every response comes from the app, so all compression is dynamic.
	DoStaticCompression bool
}

// Summary says in a few words what the section does, for "gatehouse check".
func (rf *RequestFiltering) Summary() string {
	var parts []string
	lim := &rf.Limits
	if lim.MaxAllowedContentLength > 0 {
		parts = append(parts, "maxAllowedContentLength "+strconv.FormatInt(lim.MaxAllowedContentLength, 10))
	}
	if lim.MaxURL > 0 {
		parts = append(parts, "maxUrl "+strconv.Itoa(lim.MaxURL))
	}
	if lim.MaxQueryString > 0 {
		parts = append(parts, "maxQueryString "+strconv.Itoa(lim.MaxQueryString))
	}
	count := func(n int, what string) {
		if n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+what)
		}
	}
	count(len(lim.HeaderLimits), "header limits")
	count(len(rf.FileExtensions.Rules), "file extensions")
	if !rf.FileExtensions.AllowUnlisted {
		parts = append(parts, "unlisted extensions denied")
	}
	count(len(rf.Verbs.Rules), "verbs")
	if !rf.Verbs.AllowUnlisted {
		parts = append(parts, "unlisted verbs denied")
	}
	count(len(rf.HiddenSegments), "hidden segments")
	count(len(rf.DenyURLSequences), "denied URL sequences")
	count(len(rf.DenyQueryStringSequences), "denied query sequences")
	if rf.AllowDoubleEscaping {
		parts = append(parts, "double escaping allowed")
	}
	if !rf.AllowHighBitCharacters {
		parts = append(parts, "high-bit characters denied")
	}
	if rf.RemoveServerHeader {
		parts = append(parts, "Server header removed")
	}
	if e := &rf.ServerEdits; e.ClearExtensions || e.ClearHidden || len(e.RemovedExtensions)+len(e.RemovedHidden) > 0 {
		parts = append(parts, "server lists edited")
	}
	if len(parts) == 0 {
		return "IIS defaults"
	}
	return strings.Join(parts, ", ")
}

// Summary says in a few words what the section does.
func (s *IPSecurity) Summary() string {
	unlisted := "others allowed"
	if !s.AllowUnlisted {
		unlisted = "others denied"
	}
	return strconv.Itoa(len(s.Rules)) + " rules, " + unlisted + ", denyAction " + s.DenyAction
}

// Summary says in a few words what the section does.
func (c *CustomHeaders) Summary() string {
	names := make([]string, 0, len(c.Headers))
	for _, h := range c.Headers {
		names = append(names, h.Name)
	}
	s := "custom headers: " + strings.Join(names, ", ")
	if len(names) == 0 {
		s = "no custom headers"
	}
	if len(c.Redirect) > 0 {
		s += "; " + strconv.Itoa(len(c.Redirect)) + " redirect headers"
	}
	return s
}

// Summary says in a few words what the section does.
func (d *DynamicIPSecurity) Summary() string {
	var parts []string
	if d.MaxConcurrentRequests > 0 {
		parts = append(parts, strconv.Itoa(d.MaxConcurrentRequests)+" concurrent requests per client")
	}
	if d.MaxRequests > 0 {
		parts = append(parts, strconv.Itoa(d.MaxRequests)+" requests per "+d.RequestInterval.String()+" per client")
	}
	if len(parts) == 0 {
		parts = append(parts, "no limit enabled")
	}
	s := strings.Join(parts, ", ") + ", denyAction " + d.DenyAction
	if d.LoggingOnly {
		s += ", logging only"
	}
	return s
}

// HTTPErrors is <httpErrors>: the pages that replace error responses
// (status 400 and above) for the clients that errorMode does not show
// details to.
type HTTPErrors struct {
	// ExistingResponse is "Auto" (the default: replace only the front
	// door's own answers, not the app's, which ANCM marks as not to be
	// replaced), "Replace" (replace the app's too) or "PassThrough"
	// (replace nothing).
	ExistingResponse string
	// Pages are the <error> elements left after <remove> and <clear/>, in
	// file order.
	Pages []ErrorPage
	// Default, when its Path is set, is defaultPath with
	// defaultResponseMode: the page for a status no <error> names.
	Default ErrorPage
}

// ErrorPage is one <error> of <httpErrors> (or its default page).
type ErrorPage struct {
	// Status is statusCode; Substatus is subStatusCode, -1 for any.
	Status, Substatus int
	// Mode is responseMode: "File", "ExecuteURL" or "Redirect".
	Mode string
	// Path is, for File, a slash-separated path relative to the app's
	// folder, checked to stay inside it; for ExecuteURL, an absolute URL
	// path of the same app ("/errors/404?x=1"); for Redirect, the URL sent
	// in Location.
	Path string
	// Line is where the element is, for messages.
	Line int
}
