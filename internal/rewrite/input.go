package rewrite

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Header reads a request header. http.Header satisfies it; name is in
// canonical form ("X-Forwarded-Proto") and the lookup must ignore case.
type Header interface {
	Get(name string) string
}

// Input is the view of one request that rules see. The caller fills it from
// its own request type; Evaluate does not keep or change it.
type Input struct {
	// Method is the request method ({REQUEST_METHOD}).
	Method string
	// Path is the request path as sent: %-encoded, with its leading slash,
	// relative to the site (the app's virtual path included).
	Path string
	// Query is the raw query string without "?" ({QUERY_STRING}).
	Query string
	// Host is the Host header or :authority ({HTTP_HOST}).
	Host string
	// HTTPS is whether the connection is TLS ({HTTPS} is "on" or "off").
	HTTPS bool
	// RemoteAddr and RemotePort are the client's address (without brackets)
	// and port ({REMOTE_ADDR}, {REMOTE_HOST}, {REMOTE_PORT}).
	RemoteAddr, RemotePort string
	// LocalAddr and ServerPort are where the request arrived ({LOCAL_ADDR},
	// {SERVER_PORT}).
	LocalAddr, ServerPort string
	// Protocol is "HTTP/1.1", "HTTP/2.0"… ({SERVER_PROTOCOL}).
	Protocol string
	// Header gives {HTTP_*} variables: {HTTP_X_FORWARDED_PROTO} reads
	// "X-Forwarded-Proto". nil means no headers.
	Header Header
	// AppPath and AppDir are the virtual path and folder of the app the
	// request was routed to; only global rules (Options.Global) use them,
	// for {REQUEST_FILENAME}.
	AppPath, AppDir string
}

// variable is a server variable a template reads.
type variable struct {
	id     varID
	header string // varHeader: the canonical header name
}

type varID uint8

const (
	varHeader varID = iota + 1
	varHTTPHost
	varHTTPS
	varQueryString
	varRequestURI
	varURL
	varUnencodedURL
	varCacheURL
	varRequestMethod
	varRemoteAddr
	varRemotePort
	varLocalAddr
	varServerName
	varServerPort
	varServerPortSecure
	varServerProtocol
	varRequestFilename
	varApplPhysicalPath
	varResponse       // RESPONSE_Name: a response header (outbound rules)
	varResponseStatus // RESPONSE_STATUS
)

// variables are the supported server variables by upper-cased name.
var variables = map[string]varID{
	"HTTP_HOST":          varHTTPHost,
	"HTTPS":              varHTTPS,
	"QUERY_STRING":       varQueryString,
	"REQUEST_URI":        varRequestURI,
	"HTTP_URL":           varRequestURI,
	"URL":                varURL,
	"PATH_INFO":          varURL,
	"SCRIPT_NAME":        varURL,
	"UNENCODED_URL":      varUnencodedURL,
	"CACHE_URL":          varCacheURL,
	"REQUEST_METHOD":     varRequestMethod,
	"REMOTE_ADDR":        varRemoteAddr,
	"REMOTE_HOST":        varRemoteAddr,
	"REMOTE_PORT":        varRemotePort,
	"LOCAL_ADDR":         varLocalAddr,
	"SERVER_ADDR":        varLocalAddr,
	"SERVER_NAME":        varServerName,
	"SERVER_PORT":        varServerPort,
	"SERVER_PORT_SECURE": varServerPortSecure,
	"SERVER_PROTOCOL":    varServerProtocol,
	"REQUEST_FILENAME":   varRequestFilename,
	"APPL_PHYSICAL_PATH": varApplPhysicalPath,
}

func lookupVariable(name string) (variable, error) {
	up := strings.ToUpper(name)
	if id, ok := variables[up]; ok {
		return variable{id: id}, nil
	}
	if up == "RESPONSE_STATUS" {
		return variable{id: varResponseStatus}, nil
	}
	if rest, ok := strings.CutPrefix(up, "RESPONSE_"); ok && rest != "" {
		return variable{id: varResponse, header: headerName(rest)}, nil
	}
	if rest, ok := strings.CutPrefix(up, "HTTP_"); ok && rest != "" {
		return variable{id: varHeader, header: headerName(rest)}, nil
	}
	if up == "CONTENT_TYPE" || up == "CONTENT_LENGTH" {
		return variable{id: varHeader, header: headerName(up)}, nil
	}
	return variable{}, fmt.Errorf("{%s}: server variable not supported (supported: HTTP_* headers, RESPONSE_* headers and RESPONSE_STATUS in outbound rules, HTTP_HOST, HTTPS, QUERY_STRING, REQUEST_URI, URL, UNENCODED_URL, CACHE_URL, REQUEST_METHOD, REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR, SERVER_NAME, SERVER_PORT, SERVER_PORT_SECURE, SERVER_PROTOCOL, REQUEST_FILENAME, APPL_PHYSICAL_PATH)", name)
}

// headerName turns X_FORWARDED_PROTO into X-Forwarded-Proto.
func headerName(s string) string {
	b := []byte(strings.ToLower(strings.ReplaceAll(s, "_", "-")))
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// evaluation is the state of one Evaluate call.
type evaluation struct {
	rs    *RuleSet
	in    *Input
	path  string // current path, raw, site-relative, leading slash
	query string // current query, raw
	// base is the current rule's base (rule.base): "" for the app's.
	base string
	// upstream is the other server a Rewrite sent the request to
	// ("host:port"), "" for none.
	upstream string
	r, c     []string // rule and condition captures in scope
	// sets are the request headers set by the rules so far (name, value).
	sets [][2]string
	// fileName is {REQUEST_FILENAME} of filePath (the current path), once
	// computed.
	fileName, filePath string
	// fileBase and dir map a path to a file: the app path and folder.
	fileBase, dir string
	// statPath and statInfo are the last file looked up (nil: none there).
	statPath string
	statInfo os.FileInfo
	// resp and status are the response outbound rules see; resp is nil
	// for inbound rules, whose {RESPONSE_*} are "".
	resp   pipeline.Header
	status int
}

// variable appends the value of server variable v to b.
func (e *evaluation) variable(b []byte, v variable) []byte {
	in := e.in
	switch v.id {
	case varHeader:
		b = append(b, e.header(v.header)...)
	case varHTTPHost:
		b = append(b, in.Host...)
	case varHTTPS:
		if in.HTTPS {
			return append(b, "on"...)
		}
		b = append(b, "off"...)
	case varQueryString:
		b = append(b, e.query...)
	case varRequestURI:
		b = e.requestURI(b)
	case varURL:
		b = append(b, pipeline.DecodePath(e.path)...)
	case varUnencodedURL:
		b = append(b, in.Path...)
		if in.Query != "" {
			b = append(append(b, '?'), in.Query...)
		}
	case varCacheURL:
		if in.HTTPS {
			b = append(b, "https://"...)
		} else {
			b = append(b, "http://"...)
		}
		b = e.requestURI(append(b, in.Host...))
	case varRequestMethod:
		b = append(b, in.Method...)
	case varRemoteAddr:
		b = append(b, in.RemoteAddr...)
	case varRemotePort:
		b = append(b, in.RemotePort...)
	case varLocalAddr:
		b = append(b, in.LocalAddr...)
	case varServerName:
		host := in.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		b = append(b, host...)
	case varServerPort:
		b = append(b, in.ServerPort...)
	case varServerPortSecure:
		if in.HTTPS {
			return append(b, '1')
		}
		b = append(b, '0')
	case varServerProtocol:
		b = append(b, in.Protocol...)
	case varRequestFilename:
		b = append(b, e.requestFilename()...)
	case varApplPhysicalPath:
		if e.dir != "" {
			b = append(append(b, e.dir...), '/')
		}
	case varResponse:
		if e.resp != nil {
			b = append(b, e.resp.Get(v.header)...)
		}
	case varResponseStatus:
		if e.resp != nil {
			b = strconv.AppendInt(b, int64(e.status), 10)
		}
	}
	return b
}

// variableString returns server variable v when it is a string already
// at hand (no building needed); ok is false otherwise.
func (e *evaluation) variableString(v variable) (string, bool) {
	in := e.in
	switch v.id {
	case varHeader:
		return e.header(v.header), true
	case varHTTPHost:
		return in.Host, true
	case varHTTPS:
		if in.HTTPS {
			return "on", true
		}
		return "off", true
	case varQueryString:
		return e.query, true
	case varRequestMethod:
		return in.Method, true
	case varRemoteAddr:
		return in.RemoteAddr, true
	case varRemotePort:
		return in.RemotePort, true
	case varLocalAddr:
		return in.LocalAddr, true
	case varServerPort:
		return in.ServerPort, true
	case varServerProtocol:
		return in.Protocol, true
	case varRequestFilename:
		return e.requestFilename(), true
	case varResponse:
		if e.resp == nil {
			return "", true
		}
		return e.resp.Get(v.header), true
	case varRequestURI:
		if e.query == "" {
			return e.path, true
		}
	}
	return "", false
}

func (e *evaluation) requestURI(b []byte) []byte {
	b = append(b, e.path...)
	if e.query != "" {
		b = append(append(b, '?'), e.query...)
	}
	return b
}

// appRelative returns the current path below the app, %-decoded, without a
// leading slash; ok is false when the path is outside the app.
func (e *evaluation) appRelative() (rel string, ok bool) {
	return e.below(e.rs.appPath)
}

// below returns the current path below base, %-decoded, without a leading
// slash; ok is false when the path is outside base.
func (e *evaluation) below(base string) (rel string, ok bool) {
	p := e.path
	if base != "/" {
		rest, found := strings.CutPrefix(p, base)
		if !found {
			rest, found = cutPrefixFold(p, base)
		}
		if !found || (rest != "" && rest[0] != '/') {
			return "", false
		}
		p = rest
	}
	return strings.TrimPrefix(pipeline.DecodePath(p), "/"), true
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case, as IIS matches
// virtual paths.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// requestFilename maps the current path into the app folder; "" when there
// is no folder or the path is outside the app. It is computed once per
// path.
func (e *evaluation) requestFilename() string {
	if e.fileName != "" && e.filePath == e.path {
		return e.fileName
	}
	if e.dir == "" {
		return ""
	}
	rel, ok := e.below(e.fileBase)
	if !ok {
		return ""
	}
	e.fileName, e.filePath = filepath.Join(e.dir, filepath.FromSlash(path.Clean("/"+rel))), e.path
	return e.fileName
}

// inDir returns the physical path p (relative paths are taken in the app
// folder) cleaned, and whether it is the app folder or inside it.
func (e *evaluation) inDir(p string) (string, bool) {
	if e.dir == "" || p == "" {
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(e.dir, p)
	}
	p = filepath.Clean(p)
	if p == e.dir || strings.HasPrefix(p, e.dir+string(filepath.Separator)) {
		return p, true
	}
	return "", false
}
