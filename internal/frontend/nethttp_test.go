package frontend_test

import (
	"bufio"
	"io"
	"testing"

	"github.com/gatehouse/gatehouse/internal/frontend"
)

// TestNetHTTPUnreadBody: with the lean loop off (net/http's HTTP/1 server
// serves, full duplex on), a request whose body nobody read (the app
// answered without it; no site for its host) leaves its connection open
// for the next request. net/http would otherwise read that body only after
// the handler returned and then panic reading the next request ("invalid
// concurrent Body.Read call", golang/go#68560), closing the connection.
//
// Not parallel: it switches the lean loop off for the listeners it
// starts.
func TestNetHTTPUnreadBody(t *testing.T) {
	frontend.SetLeanHTTP1(false)
	t.Cleanup(func() { frontend.SetLeanHTTP1(true) }) // after the server stopped
	e := newEnv(t, "app")
	s := start(t, e.config(t, plainSite), newOpener())
	for _, host := range []string{"localhost", "unknown.example"} {
		t.Run(host, func(t *testing.T) {
			c := dialRaw(t, s.Addrs()["http"].String())
			br := bufio.NewReader(c)
			for i := range 3 {
				// /cb answers at once, without reading the body.
				if _, err := io.WriteString(c, "POST /cb HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if code := readStatus(t, c, br); code == 0 {
					t.Fatalf("request %d: no answer", i)
				}
			}
		})
	}
}
