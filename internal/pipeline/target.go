package pipeline

// BadTarget says why a request with this method and (escaped, cleaned)
// path must be refused with 400 before routing, or returns "" when it may
// go on. It refuses what an app could read differently from the front
// door: the HTTP/2 connection preface read as an HTTP/1 request ("PRI *",
// RFC 9113 §3.4), the asterisk form with a method other than OPTIONS (RFC
// 9112 §3.2.4), and a path that does not start with '/' for any method
// but CONNECT. Both ways into the front door call it.
func BadTarget(method, path string) string {
	switch {
	case method == "PRI":
		return "HTTP/2 connection preface on an HTTP/1 connection"
	case path == "*":
		if method != "OPTIONS" {
			return "asterisk-form target with " + method
		}
	case method == "CONNECT":
	case path == "" || path[0] != '/':
		return "request target is not an absolute path"
	}
	return ""
}
