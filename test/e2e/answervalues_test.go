package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each answer's header values reach its own client, whole, on keep-alive
// connections served at the same time: the forwarder stores an answer's
// values in slots the front door's writer keeps with its header map and
// reuses for the connection's next answer, and the writer sends the head
// after the forwarder is done with the request. Answers of a few fields,
// of a repeated field (Set-Cookie), and of more fields than the slots
// first hold.
func TestAnswerValuesPerResponse(t *testing.T) {
	t.Parallel()
	s := startIISSite(t, "", "/", "plain")
	const conns, requests = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Go(func() {
			if err := answerValues(s.addr, c, requests); err != nil {
				errs <- fmt.Errorf("connection %d: %w", c, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// answerValues sends requests /set-headers requests on one connection,
// each naming fields with values of its own, and checks each answer's.
func answerValues(addr string, c, requests int) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for i := range requests {
		want := map[string][]string{}
		var q []string
		add := func(k, v string) {
			want[k] = append(want[k], v)
			q = append(q, "h="+k+":"+v)
		}
		tag := fmt.Sprintf("c%d-r%d", c, i)
		add("X-A", tag+"-a")
		add("X-B", tag+"-bbbbbbbbbbbbbbbbbbbbbbbb")
		if i%3 == 1 {
			add("Set-Cookie", tag+"=1")
			add("Set-Cookie", tag+"=2")
		}
		if i%5 == 2 {
			for j := range 20 {
				add(fmt.Sprintf("X-N%d", j), fmt.Sprintf("%s-%d", tag, j))
			}
		}
		if _, err := fmt.Fprintf(conn, "GET /set-headers?%s HTTP/1.1\r\nHost: %s\r\n\r\n", strings.Join(q, "&"), addr); err != nil {
			return err
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: status %d", i, res.StatusCode)
		}
		for k, vs := range want {
			if got := res.Header[k]; strings.Join(got, "|") != strings.Join(vs, "|") {
				return fmt.Errorf("request %d: %s is %q, want %q", i, k, got, vs)
			}
		}
	}
	return nil
}
