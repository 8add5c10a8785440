package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcAppBin is test/e2e/testdata/grpcapp (grpc-go's interop TestService
// that names its pid in the header "app-pid"), built once per run of the
// package beside the interop binaries.
var grpcAppBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(gatehouseBin), "grpc-interop", "grpcapp")
	cmd := exec.Command("go", "build", "-o", bin, "./test/e2e/testdata/grpcapp")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the gRPC test app: %v\n%s", err, out)
	}
	return bin, nil
})

// grpcLoadApp writes an h2c app folder running grpcapp; graceful makes it
// finish its calls on SIGTERM, as Kestrel does.
func grpcLoadApp(t *testing.T, graceful bool) string {
	t.Helper()
	bin, err := grpcAppBin()
	if err != nil {
		t.Fatal(err)
	}
	args := "--port=%ASPNETCORE_PORT%"
	if graceful {
		args += " --graceful"
	}
	return writeApp(t, fmt.Sprintf(`processPath=%q arguments=%q`, bin, args),
		`<handlerSettings><handlerSetting name="protocol" value="h2c" /></handlerSettings>`)
}

// grpcCall is one finished call of the load: which worker made it, when, the
// process that answered (the header app-pid), the messages it received and
// its error.
type grpcCall struct {
	worker     int
	kind       string
	start, end time.Time
	pid        string
	msgs       int
	err        error
}

// grpcLoad is a steady gRPC load on a front door: workers spread over two
// client connections, each making one call after another (a unary call, a
// server stream of four messages 25 ms apart, a bidirectional stream of
// three round trips), until stop or a bounded number of calls.
type grpcLoad struct {
	t     *testing.T
	conns []*grpc.ClientConn
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	calls []grpcCall
}

const (
	grpcLoadWorkers        = 6
	grpcLoadCallsPerWorker = 3000
)

// dialGRPC opens a client connection over h2c to addr, closed at the end of
// the test.
func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// startGRPCLoad starts the load on addr; it ends with stopLoad, or at the end
// of the test.
func startGRPCLoad(t *testing.T, addr string) *grpcLoad {
	t.Helper()
	l := &grpcLoad{t: t, stop: make(chan struct{})}
	l.conns = []*grpc.ClientConn{dialGRPC(t, addr), dialGRPC(t, addr)}
	ctx := ctxT(t)
	for w := range grpcLoadWorkers {
		c := testpb.NewTestServiceClient(l.conns[w%len(l.conns)])
		l.wg.Go(func() {
			for n := range grpcLoadCallsPerWorker {
				select {
				case <-l.stop:
					return
				default:
				}
				r := oneGRPCCall(ctx, c, (w+n)%3)
				r.worker = w
				l.mu.Lock()
				l.calls = append(l.calls, r)
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { l.stopLoad() })
	return l
}

// stopLoad stops the workers, waits for their calls to end and returns
// every call made.
func (l *grpcLoad) stopLoad() []grpcCall {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// waitCall waits until a finished call satisfies cond.
func (l *grpcLoad) waitCall(what string, cond func(grpcCall) bool) {
	l.t.Helper()
	waitFor(l.t, 20*time.Second, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.calls {
			if cond(r) {
				return true
			}
		}
		return false
	})
}

// okCalls counts the calls that succeeded.
func (l *grpcLoad) okCalls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.calls {
		if r.err == nil {
			n++
		}
	}
	return n
}

// oneGRPCCall makes one call of the given kind (0 unary, 1 server stream, 2
// bidirectional stream) and checks what it receives.
func oneGRPCCall(ctx context.Context, c testpb.TestServiceClient, kind int) grpcCall {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r := grpcCall{start: time.Now()}
	defer func() { r.end = time.Now() }()
	pidOf := func(md metadata.MD) string {
		if v := md.Get("app-pid"); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch kind {
	case 0:
		r.kind = "unary"
		var hdr metadata.MD
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{
			ResponseSize: 1024, Payload: &testpb.Payload{Body: make([]byte, 1024)},
		}, grpc.Header(&hdr))
		r.pid = pidOf(hdr)
		if err == nil {
			r.msgs = 1
			if n := len(resp.GetPayload().GetBody()); n != 1024 {
				err = fmt.Errorf("response payload of %d bytes, want 1024", n)
			}
		}
		r.err = err
	case 1:
		r.kind = "server stream"
		params := make([]*testpb.ResponseParameters, 4)
		for i := range params {
			params[i] = &testpb.ResponseParameters{Size: 512, IntervalUs: 25000}
		}
		s, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			r.err = err
			return r
		}
		for {
			_, err := s.Recv()
			if r.msgs == 0 {
				hdr, _ := s.Header()
				r.pid = pidOf(hdr)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				return r
			}
			r.msgs++
		}
		if r.msgs != len(params) {
			r.err = fmt.Errorf("%d messages, want %d", r.msgs, len(params))
		}
	case 2:
		r.kind = "bidi stream"
		s, err := c.FullDuplexCall(ctx)
		if err != nil {
			r.err = err
			return r
		}
		r.err = func() error {
			for range 3 {
				if err := s.Send(&testpb.StreamingOutputCallRequest{
					ResponseParameters: []*testpb.ResponseParameters{{Size: 256}},
					Payload:            &testpb.Payload{Body: make([]byte, 256)},
				}); err != nil {
					_, err = s.Recv() // the status is there
					return err
				}
				_, err := s.Recv()
				if r.msgs == 0 {
					hdr, _ := s.Header()
					r.pid = pidOf(hdr)
				}
				if err != nil {
					return err
				}
				r.msgs++
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); err != io.EOF {
				return fmt.Errorf("after the last round trip, want the end of the stream: %w", err)
			}
			return nil
		}()
	}
	return r
}

// grpcHolder is one bidirectional stream held open on one app process across
// an event (recycle, app_offline, kill -9).
type grpcHolder struct {
	s      testpb.TestService_FullDuplexCallClient
	cancel context.CancelFunc
	pid    string
}

// openGRPCHolder opens a stream and makes one round trip on it.
func openGRPCHolder(t *testing.T, conn *grpc.ClientConn) *grpcHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	t.Cleanup(cancel)
	s, err := testpb.NewTestServiceClient(conn).FullDuplexCall(ctx)
	if err != nil {
		t.Fatalf("open the held stream: %v", err)
	}
	h := &grpcHolder{s: s, cancel: cancel}
	if err := h.roundTrip(); err != nil {
		t.Fatalf("first round trip on the held stream: %v", err)
	}
	md, err := s.Header()
	if err != nil || len(md.Get("app-pid")) == 0 {
		t.Fatalf("held stream's header %v (%v), want app-pid", md, err)
	}
	h.pid = md.Get("app-pid")[0]
	return h
}

// roundTrip sends one message and receives the answer.
func (h *grpcHolder) roundTrip() error {
	if err := h.s.Send(&testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 100}},
	}); err != nil {
		_, err = h.s.Recv()
		return fmt.Errorf("send: %w", err)
	}
	if _, err := h.s.Recv(); err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	return nil
}

// finish ends the stream from the client side and waits for its status.
func (h *grpcHolder) finish() error {
	defer h.cancel()
	if err := h.s.CloseSend(); err != nil {
		return err
	}
	if _, err := h.s.Recv(); err != io.EOF {
		return fmt.Errorf("at the end: %v, want the end of the stream", err)
	}
	return nil
}

// describeGRPCCalls summarises calls: how many, by kind and result, and by process.
func describeGRPCCalls(calls []grpcCall) string {
	byPid := map[string]int{}
	failed := 0
	for _, r := range calls {
		byPid[r.pid]++
		if r.err != nil {
			failed++
		}
	}
	return fmt.Sprintf("%d calls, %d failed, by app pid %v", len(calls), failed, byPid)
}

// TestGRPCLoad puts a steady gRPC load (unary calls, server streams and
// bidirectional streams from six workers on two connections) through the
// real binary to grpcapp hosted over h2c, and checks what each event costs:
// a recycle loses no call (a stream held on the old process keeps working
// after the new process took over, and ends well); app_offline.htm makes
// new calls fail with UNAVAILABLE naming 503 and nothing else fail (a
// stream held across it ends well), and its removal brings the app back;
// a kill -9 of the app fails only calls that reached that process before
// Gatehouse saw it die (the ones it held, and any sent to it in the
// moment before its exit was noticed), each with UNAVAILABLE, and none
// started later.
func TestGRPCLoad(t *testing.T) {
	t.Parallel()
	p := newPKI(t, t.TempDir())

	t.Run("recycle", func(t *testing.T) {
		// The app exits at once on SIGTERM: a stream it still holds
		// lives only through Gatehouse's drain.
		pidFile := filepath.Join(t.TempDir(), "gh.pid")
		_, httpAddr, _ := startGRPCSiteAt(t, p, grpcLoadApp(t, false), "/", "--pid-file", pidFile)
		l := startGRPCLoad(t, httpAddr)
		waitFor(t, 20*time.Second, "50 calls to succeed", func() bool { return l.okCalls() >= 50 })
		for i := range 2 {
			h := openGRPCHolder(t, l.conns[0])
			recycleAt := time.Now()
			recycled := make(chan string, 1)
			go func() {
				out, err := exec.Command(gatehouseBin, "recycle", "--pid-file", pidFile).CombinedOutput()
				if err != nil {
					out = fmt.Appendf(out, "\n%v", err)
				}
				recycled <- string(out)
			}()
			l.waitCall("a call answered by the new process", func(r grpcCall) bool {
				return r.err == nil && r.pid != "" && r.pid != h.pid && r.start.After(recycleAt)
			})
			if err := h.roundTrip(); err != nil {
				t.Errorf("recycle %d: the stream held on the old process %s failed after the new one took over: %v", i+1, h.pid, err)
			}
			if err := h.finish(); err != nil {
				t.Errorf("recycle %d: the stream held on the old process %s ended badly: %v", i+1, h.pid, err)
			}
			if out := <-recycled; !strings.Contains(out, "done") {
				t.Fatalf("gatehouse recycle %d:\n%s", i+1, out)
			}
		}
		l.waitCall("a call after the second recycle", func(r grpcCall) bool { return r.err == nil })
		calls := l.stopLoad()
		t.Logf("two recycles: %s", describeGRPCCalls(calls))
		for _, r := range calls {
			if r.err != nil {
				t.Errorf("worker %d: %s call (pid %q, %d messages) failed during the recycles: %v", r.worker, r.kind, r.pid, r.msgs, r.err)
			}
		}
	})

	t.Run("app_offline", func(t *testing.T) {
		// The app finishes its calls on SIGTERM, as Kestrel does after
		// the shutdown event.
		app := grpcLoadApp(t, true)
		_, httpAddr, _ := startGRPCSite(t, p, app)
		l := startGRPCLoad(t, httpAddr)
		waitFor(t, 20*time.Second, "50 calls to succeed", func() bool { return l.okCalls() >= 50 })
		h := openGRPCHolder(t, l.conns[0])
		offline := filepath.Join(app, "app_offline.htm")
		offlineAt := time.Now()
		writeFile(t, offline, "<html>down for maintenance</html>")
		l.waitCall("a call refused while offline", func(r grpcCall) bool { return refusedOffline(r) && r.start.After(offlineAt) })
		if err := h.roundTrip(); err != nil {
			t.Errorf("the stream held across app_offline.htm failed: %v", err)
		}
		if err := h.finish(); err != nil {
			t.Errorf("the stream held across app_offline.htm ended badly: %v", err)
		}
		onlineAt := time.Now()
		if err := os.Remove(offline); err != nil {
			t.Fatal(err)
		}
		l.waitCall("a call answered by a new process after app_offline.htm is gone", func(r grpcCall) bool {
			return r.err == nil && r.pid != h.pid && r.start.After(onlineAt)
		})
		calls := l.stopLoad()
		refused := 0
		for _, r := range calls {
			switch {
			case r.err == nil:
			case refusedOffline(r):
				refused++
			default:
				t.Errorf("worker %d: %s call (pid %q, %d messages) failed, not as refused while offline: %v", r.worker, r.kind, r.pid, r.msgs, r.err)
			}
		}
		t.Logf("app_offline.htm added and removed: %s; %d refused while offline (UNAVAILABLE, 503)", describeGRPCCalls(calls), refused)
	})

	t.Run("kill -9", func(t *testing.T) {
		app := grpcLoadApp(t, false)
		g, httpAddr, _ := startGRPCSite(t, p, app)
		l := startGRPCLoad(t, httpAddr)
		waitFor(t, 20*time.Second, "50 calls to succeed", func() bool { return l.okCalls() >= 50 })
		h := openGRPCHolder(t, l.conns[0])
		var pid int
		if _, err := fmt.Sscan(h.pid, &pid); err != nil {
			t.Fatalf("app pid %q: %v", h.pid, err)
		}
		killedAt := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// From the moment Gatehouse logs the exit, the process is out of
		// its slot: every call that reaches Gatehouse later goes to a new
		// process.
		var seenAt time.Time
		waitFor(t, 10*time.Second, "gatehouse to log the app's exit", func() bool {
			for _, r := range g.logs.records() {
				if m, _ := r["msg"].(string); strings.HasPrefix(m, "process exited unexpectedly") && r["pid"] == float64(pid) {
					ts, _ := r["time"].(string)
					var err error
					if seenAt, err = time.Parse(time.RFC3339Nano, ts); err != nil {
						t.Fatalf("time of the exit record %q: %v", ts, err)
					}
					return true
				}
			}
			return false
		})
		if err := h.roundTrip(); err == nil {
			t.Error("a round trip on the stream the killed process held succeeded")
		}
		h.cancel()
		l.waitCall("a call answered by a new process", func(r grpcCall) bool {
			return r.err == nil && r.pid != h.pid && r.start.After(seenAt)
		})
		calls := l.stopLoad()
		held, late := 0, 0
		for _, r := range calls {
			switch {
			case r.err == nil:
			case !(status.Code(r.err) == codes.Unavailable || status.Code(r.err) == codes.Internal && r.pid != ""):
				// Gatehouse answers UNAVAILABLE before the app's header,
				// and resets a stream cut after it (INTERNAL).
				t.Errorf("worker %d: %s call failed with %v, want UNAVAILABLE (or INTERNAL once the app had answered)", r.worker, r.kind, r.err)
			case !r.start.Before(seenAt):
				t.Errorf("worker %d: %s call started after Gatehouse saw the app die failed: %v", r.worker, r.kind, r.err)
			case r.start.Before(killedAt):
				held++
			default:
				late++
			}
		}
		t.Logf("kill -9: %s; failed: %d in flight at the kill, %d sent to the dying process before Gatehouse saw its exit (%s later)",
			describeGRPCCalls(calls), held, late, seenAt.Sub(killedAt).Round(time.Millisecond))
	})
}

// refusedOffline reports whether r was refused by Gatehouse because the
// app is offline: UNAVAILABLE naming HTTP Error 503 before any message.
func refusedOffline(r grpcCall) bool {
	st, ok := status.FromError(r.err)
	return r.err != nil && ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "HTTP Error 503") && r.msgs == 0
}
