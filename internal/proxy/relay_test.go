package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRelayCopy: relayCopy passes every byte in order whatever the reads
// bring: small pieces (the quiet buffer), pieces that fill it (it takes
// the large buffer), bulk, and small pieces again (it gives it back).
func TestRelayCopy(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	var pieces [][]byte
	add := func(n int, fill byte) {
		p := bytes.Repeat([]byte{fill}, n)
		for i := range p {
			p[i] += byte(i % 7)
		}
		pieces = append(pieces, p)
		want.Write(p)
	}
	for i := range 5 {
		add(100+i, 'a')
	}
	add(quietBufferSize, 'b')
	for range 4 {
		add(bufferSize, 'c')
	}
	add(3*bufferSize+17, 'd') // arrives in several reads
	for i := range 5 {
		add(10+i, 'e')
	}
	add(quietBufferSize+1, 'f')
	add(1, 'g')

	src, w := net.Pipe() // each read returns at most what one write gave
	r, dst := net.Pipe()
	go func() {
		defer w.Close()
		for _, p := range pieces {
			if _, err := w.Write(p); err != nil {
				return
			}
		}
	}()
	go func() {
		defer dst.Close()
		relayCopy(dst, src)
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("relayed %d bytes, want %d (same length: %v)", len(got), want.Len(), len(got) == want.Len())
	}
}

// TestRelayFloodDoesNotStarve: while one upgraded connection echoes
// messages as fast as client and app can send them, plain requests on
// other connections are all answered, and the flood keeps moving between
// them. Counted in requests and bytes, not time: whether a message's echo
// completes within one probe's round trip is up to the schedulers (on a
// loaded machine none may, for many probes in a row), so each probe waits
// for the flood to move on instead.
func TestRelayFloodDoesNotStarve(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.front.URL, "http")+"/ws", &websocket.DialOptions{HTTPClient: e.front.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)

	floodCtx, stopFlood := context.WithCancel(ctx)
	var echoed atomic.Int64
	progress := make(chan struct{}, 1) // a value after each echo
	var wg sync.WaitGroup
	msg := bytes.Repeat([]byte("x"), 64<<10)
	wg.Go(func() {
		for floodCtx.Err() == nil && c.Write(floodCtx, websocket.MessageBinary, msg) == nil {
		}
	})
	wg.Go(func() {
		for {
			_, m, err := c.Read(floodCtx)
			if err != nil {
				return
			}
			echoed.Add(int64(len(m)))
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	})
	defer func() {
		stopFlood()
		c.CloseNow()
		wg.Wait()
	}()

	// Probes on their own connections, after the flood is under way and
	// while it runs: each is answered, and the flood moves on after each.
	const probes = 40
	probe := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer probe.CloseIdleConnections()
	waitEchoed := func(min int64) {
		for echoed.Load() < min {
			select {
			case <-progress:
			case <-ctx.Done():
				t.Fatalf("the flood echoed %d bytes, want %d", echoed.Load(), min)
			}
		}
	}
	waitEchoed(1 << 20)
	during := 0
	for i := range probes {
		before := echoed.Load()
		res, body := get(t, probe, mustRequest(t, e.front.URL+"/probe"))
		if res.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("probe %d: %d %q", i, res.StatusCode, body)
		}
		if echoed.Load() > before {
			during++
		}
		waitEchoed(before + int64(len(msg))) // one more message, at least, before the next probe
	}
	t.Logf("the flood moved during %d of the %d probes", during, probes)
	waitEchoed(echoed.Load() + 1<<20) // still flowing after the probes
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
