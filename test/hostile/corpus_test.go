package hostile_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A corpus file holds raw HTTP/1.1 requests, each a case:
//
//	# why the case is there (comments are kept with the next case)
//	case NAME WANT [status=CODE] [app=PATH] [target=TARGET]
//	  "Go-quoted bytes"
//	  "more bytes, concatenated"
//
// WANT is what Gatehouse must do:
//
//	refuse  the front door answers with a 4xx (or 501/505) and closes the
//	        connection; every response before it came from the app, one
//	        per request the app read in full, and nothing after it reached
//	        the app.
//	pass    the request is forwarded normalised: every response came from
//	        the app, one per request it read in full, the bytes the app got
//	        are strictly framed, and the end-of-case request sent after the
//	        case's bytes is answered by the app (client, Gatehouse and app
//	        agree where every request ends).
//	close   the app answers the case's request and the front door then
//	        closes the connection without reading on (an HTTP/1.0 request):
//	        nothing after it can reach the app.
//	drop    the front door closes the connection, with a refusal or
//	        without an answer; the app read no request in full.
//
// status= is the refusal's status; app= and target= are the application
// (virtual path) and request target the app must get for the case's first
// request.
type corpusCase struct {
	Name    string
	Want    string
	Status  int
	App     string
	Target  string
	Why     string
	Raw     string
	File    string
	Line    int
	Comment []string
}

func loadCorpus(path string) ([]*corpusCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		cases   []*corpusCase
		cur     *corpusCase
		comment []string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			cur = nil
		case strings.HasPrefix(trimmed, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
		case strings.HasPrefix(line, "case "):
			f := strings.Fields(line)
			if len(f) < 3 {
				return nil, fmt.Errorf("%s:%d: want \"case NAME WANT\"", path, n)
			}
			cur = &corpusCase{Name: f[1], Want: f[2], File: path, Line: n, Comment: comment}
			comment = nil
			for _, kv := range f[3:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: %q is not key=value", path, n, kv)
				}
				switch k {
				case "status":
					if cur.Status, err = strconv.Atoi(v); err != nil {
						return nil, fmt.Errorf("%s:%d: status: %v", path, n, err)
					}
				case "app":
					cur.App = v
				case "target":
					cur.Target = v
				default:
					return nil, fmt.Errorf("%s:%d: unknown key %q", path, n, k)
				}
			}
			if w := cur.Want; w != "refuse" && w != "pass" && w != "close" && w != "drop" {
				return nil, fmt.Errorf("%s:%d: outcome %q is not refuse, pass, close or drop", path, n, w)
			}
			cases = append(cases, cur)
		case strings.HasPrefix(trimmed, `"`):
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: bytes outside a case", path, n)
			}
			s, err := strconv.Unquote(trimmed)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			cur.Raw += s
		default:
			return nil, fmt.Errorf("%s:%d: cannot read %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			return nil, fmt.Errorf("%s:%d: case %s given twice", path, c.Line, c.Name)
		}
		seen[c.Name] = true
		if c.Raw == "" {
			return nil, fmt.Errorf("%s:%d: case %s has no bytes", path, c.Line, c.Name)
		}
	}
	return cases, nil
}
